// A minimal linear scale (d3-scale's interface subset regl-scatterplot uses:
// domain() / domain([a, b]) / range([a, b]) and calling it), so the plot keeps the
// visible data rectangle up to date for us on pan/zoom.

export function linearScale(domain = [-1, 1], range = [0, 1]) {
  let d = [...domain];
  let r = [...range];
  const scale = (x) => r[0] + ((x - d[0]) / (d[1] - d[0])) * (r[1] - r[0]);
  scale.invert = (y) => d[0] + ((y - r[0]) / (r[1] - r[0])) * (d[1] - d[0]);
  scale.domain = (v) => { if (v === undefined) return [...d]; d = [...v]; return scale; };
  scale.range = (v) => { if (v === undefined) return [...r]; r = [...v]; return scale; };
  scale.copy = () => linearScale(d, r);
  return scale;
}
