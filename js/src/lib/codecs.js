// Binary codecs for traits that travel as bytes (ipywidgets buffers arrive as DataView).

/** View a DataView/ArrayBuffer/TypedArray as a typed array of `Type` without copying
 * when it is aligned (copying otherwise). */
function view(data, Type) {
  if (data == null) return new Type(0);
  if (data instanceof Type) return data;
  let buffer, offset, length;
  if (data instanceof ArrayBuffer) {
    buffer = data; offset = 0; length = data.byteLength;
  } else if (ArrayBuffer.isView(data)) {
    buffer = data.buffer; offset = data.byteOffset; length = data.byteLength;
  } else {
    throw new TypeError(`expected binary data, got ${typeof data}`);
  }
  const n = Math.floor(length / Type.BYTES_PER_ELEMENT);
  if (offset % Type.BYTES_PER_ELEMENT === 0) return new Type(buffer, offset, n);
  return new Type(buffer.slice(offset, offset + n * Type.BYTES_PER_ELEMENT));
}

export const toFloat32 = (data) => view(data, Float32Array);
export const toUint32 = (data) => view(data, Uint32Array);
export const toUint8 = (data) => view(data, Uint8Array);

/** A typed array -> DataView on its bytes, the form ipywidgets sends as a buffer. */
export function toBytes(typed) {
  return new DataView(typed.buffer, typed.byteOffset, typed.byteLength);
}

/** Sorted unique uint32 indices as bytes (for selection traits). */
export function indicesToBytes(indices) {
  const arr = Uint32Array.from(indices);
  arr.sort();
  return toBytes(arr);
}
