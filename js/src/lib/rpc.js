// Request/response over anywidget custom messages: request(model, {type, ...}) sends the
// message with a fresh request_id; Python answers with the same request_id (+ buffers).
// One "msg:custom" listener per model (shared by all its views, so no view adds or
// removes one); it lives as long as the model.

let nextId = 1;
const pending = new WeakMap(); // model -> Map(request_id -> {resolve, reject, timer})

function table(model) {
  let t = pending.get(model);
  if (!t) {
    t = new Map();
    pending.set(model, t);
    model.on("msg:custom", (msg, buffers) => {
      if (!msg || msg.request_id == null) return;
      const entry = t.get(msg.request_id);
      if (!entry) return;
      t.delete(msg.request_id);
      clearTimeout(entry.timer);
      if (msg.error) entry.reject(new Error(msg.error));
      else entry.resolve({ content: msg, buffers: buffers || [] });
    });
  }
  return t;
}

/** Send `content` to Python and resolve with {content, buffers} of its reply. */
export function request(model, content, { timeout = 30000 } = {}) {
  const t = table(model);
  const request_id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      t.delete(request_id);
      reject(new Error(`no reply from the kernel to "${content.type}" after ${timeout / 1000} s`));
    }, timeout);
    t.set(request_id, { resolve, reject, timer });
    model.send({ ...content, request_id });
  });
}
