// esbuild bundles imported style sheets into the page's one CSS file.
declare module '*.css'
