/** The digits inlined by the mnistDigits vite plugin (demo/mnist-digits.ts): pixels then labels, base64. */
declare module 'virtual:mnist-digits' {
  const digits: { count: number; base64: string };
  export default digits;
}
