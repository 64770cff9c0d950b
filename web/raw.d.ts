// Vite's `?raw` imports: the file's text (the tutorials are imported from docs/tutorials/).
declare module '*.md?raw' {
  const text: string;
  export default text;
}
