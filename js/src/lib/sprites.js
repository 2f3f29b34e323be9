// Thumbnails from PNG sprite sheets fetched once each from Python (see dfwidgets/thumbs.py).
import { request } from "./rpc.js";

export class SpriteSheets {
  /** meta: {thumb_size, per_row, per_sheet, n_sheets, n} */
  constructor(model, meta) {
    this.model = model;
    this.meta = meta;
    this.sheets = new Map(); // index -> Promise<ImageBitmap>
  }

  /** Promise of sheet k as an ImageBitmap (requested from the kernel once). */
  sheet(k) {
    let p = this.sheets.get(k);
    if (!p) {
      p = request(this.model, { type: "sheet", index: k }).then(({ buffers }) =>
        createImageBitmap(new Blob([buffers[0]], { type: "image/png" })));
      p.catch(() => this.sheets.delete(k));
      this.sheets.set(k, p);
    }
    return p;
  }

  /** Where item i sits: {sheet, sx, sy, size}. */
  locate(i) {
    const { per_sheet, per_row, thumb_size } = this.meta;
    const sheet = Math.floor(i / per_sheet);
    const pos = i % per_sheet;
    return { sheet, sx: (pos % per_row) * thumb_size, sy: Math.floor(pos / per_row) * thumb_size, size: thumb_size };
  }

  /** Draw item i's thumbnail into `canvas` (scaled to fill it, crisp pixels). */
  async draw(canvas, i) {
    const { sheet, sx, sy, size } = this.locate(i);
    const bmp = await this.sheet(sheet);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(bmp, sx, sy, size, size, 0, 0, canvas.width, canvas.height);
  }
}
