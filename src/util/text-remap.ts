/**
 * Text with some characters dropped (the network's styling markers), and where every index of
 * the original lands in what is kept, so that spans can be carried over: `position[i]` is the
 * index in `kept` of the first kept character at or after `i` (`position[text.length]` is
 * `kept.length`). Shared by both directions of styling (interop/convert, matrix/convert), hence in util/.
 */
export function dropCharacters(
  text: string,
  hidden: Uint8Array,
): { kept: string; position: Int32Array } {
  const position = new Int32Array(text.length + 1);
  let kept = "";
  for (let i = 0; i < text.length; i++) {
    position[i] = kept.length;
    if (hidden[i] !== 1) kept += text[i];
  }
  position[text.length] = kept.length;
  return { kept, position };
}
