// attnviz interactive view. Reads the figure decided in Python (window.ATTNVIZ: panels, cells as
// colour indices, values for the readout, labels, markers) and draws it; decides nothing about the
// picture itself. No network, no build step: this file is inlined into each page.
"use strict";

(function () {
  const data = window.ATTNVIZ;
  const MARGIN = { left: 58, right: 12, top: 26, bottom: 38 };  // CSS pixels around a panel's cells
  const root = document.getElementById("attnviz");
  const readout = document.getElementById("readout");
  const state = { frame: 0, t: null, window: null, rows: {}, drag: null };
  window.attnvizView = state;  // for tests and the console

  function decode(b64, Type) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return new Type(bytes.buffer);
  }
  const luts = {};
  for (const [name, b64] of Object.entries(data.luts)) luts[name] = decode(b64, Uint8Array);
  function decodePanel(p) {
    if (!p.present) return;
    p.index = decode(p.index, Uint8Array);  // (cols x rows) colour indices, as the PNG paints them
    p.value = decode(p.value, Float32Array);  // the value each cell stands for (block maximum or mean)
    p.unscored = p.unscored ? decode(p.unscored, Uint8Array) : null;
    p.nonfinite = p.nonfinite ? decode(p.nonfinite, Uint8Array) : null;  // (cols x rows) 1: NaN or infinite
    if (p.series) p.series = decode(p.series, Float32Array);  // a bar strip's value at each column
    if (p.alt) decodePanel(p.alt);  // the same panel with its locations in the other order
  }
  for (const frame of data.frames) {
    for (const p of frame.panels) decodePanel(p);
    const L = frame.links;  // the link matrix of each column's step: (cols x heads x n x n) colour indices
    if (L && L.index) {
      L.index = decode(L.index, Uint8Array);
      L.nonfinite = L.nonfinite ? decode(L.nonfinite, Uint8Array) : null;
    }
    const s = frame.steps;  // one head's addressing stages: what each column's readout says
    if (s) {
      for (const k of ["gate", "key strength", "sharpening", "shift", "peak_value"]) if (s[k]) s[k] = decode(s[k], Float32Array);
      if (s.peak) s.peak = decode(s.peak, Int32Array);
    }
  }
  const sizeOf = (frame, p) => p.size || frame.panel_size;  // a panel's cells, in CSS pixels

  // The Scene's ticks ([coordinate, label] pairs) for the view [lo, hi) of an axis spanning full:
  // the very ticks of the PNG when the whole axis is in view; zoomed in, the finest of the Scene's
  // steps (listed coarse to fine) that puts no more ticks in view than the whole axis has, at the
  // coordinates whose label is a multiple of it.
  // Rows with names (locations in written order, read modes) are labelled by name, at every step-th row.
  function ticks(axis, lo, hi, full, modulo, names) {
    if (lo <= full[0] && hi >= full[1]) return axis.at.map((v, k) => [v, axis.labels[k]]);
    const want = axis.steps[0] * (hi - lo) / (full[1] - full[0]);
    const step = axis.steps.filter((s) => s >= want).pop() || axis.steps[0];
    const out = [];
    for (let v = Math.ceil(lo - 0.5); v < hi - 0.5; v++) {
      if (names) {
        if ((v - full[0]) % step === 0) out.push([v, names[v - full[0]]]);
        continue;
      }
      const label = modulo ? ((v % modulo) + modulo) % modulo : v;
      if (label % step === 0) out.push([v, String(label)]);
    }
    return out;
  }

  function timeWindow(frame) {
    return state.window || frame.panels[0].time.slice();
  }

  function build() {
    root.innerHTML = "";
    const frame = data.frames[state.frame];
    const title = document.createElement("h1");
    title.textContent = frame.title || "";
    root.appendChild(title);
    // A comparison comes in sections (a, b, their difference), each under its heading, its panels in
    // the grid cells given; any other figure is one grid, its panels in order.
    const sections = frame.sections || [{ heading: null, panels: frame.panels.map((_, k) => k), slots: null }];
    for (const section of sections) {
      if (section.heading) {
        const heading = document.createElement("h2");
        heading.textContent = section.heading;
        root.appendChild(heading);
      }
      const grid = document.createElement("div");
      grid.className = "grid";
      grid.style.gridTemplateColumns = `repeat(${frame.grid[1]}, ${frame.panel_size[0] + MARGIN.left + MARGIN.right}px)`;
      root.appendChild(grid);
      section.panels.forEach((k, n) => {
        const p = frame.panels[k];
        const canvas = document.createElement("canvas");
        const [pw, ph] = sizeOf(frame, p), w = pw + MARGIN.left + MARGIN.right, h = ph + MARGIN.top + MARGIN.bottom;
        const dpr = window.devicePixelRatio || 1;
        canvas.width = w * dpr; canvas.height = h * dpr;
        canvas.style.width = w + "px"; canvas.style.height = h + "px";
        if (section.slots) { canvas.style.gridRow = section.slots[n][0] + 1; canvas.style.gridColumn = section.slots[n][1] + 1; }
        canvas.dataset.panel = k;
        canvas.setAttribute("role", "img");
        canvas.setAttribute("aria-label", p.tag ? `${p.tag}: ${p.title}` : p.title);
        grid.appendChild(canvas);
        p.canvas = canvas;
        attach(canvas, frame, p);
      });
      if (section.legend) root.appendChild(legend(section.legend));
    }
    for (const text of frame.notes || []) {  // lines of text below the figure (layout paper's priority fit)
      const note = document.createElement("p");
      note.className = "note";
      note.textContent = text;
      root.appendChild(note);
    }
    draw();
  }

  // A colour bar for a section's scale: its colormap from vmin to vmax, its ends and middle labelled.
  function legend(l) {
    const canvas = document.createElement("canvas");
    const W = 260, H = 34, lut = luts[l.cmap];
    canvas.width = W; canvas.height = H; canvas.className = "legend";
    canvas.setAttribute("aria-label", `colour scale of ${l.label}: ${l.vmin} to ${l.vmax}`);
    const ctx = canvas.getContext("2d");
    for (let x = 0; x < 200; x++) {
      const k = Math.min(255, Math.floor((x / 200) * 256)) * 3;
      ctx.fillStyle = `rgb(${lut[k]}, ${lut[k + 1]}, ${lut[k + 2]})`;
      ctx.fillRect(MARGIN.left + x, 2, 1, 12);
    }
    ctx.strokeStyle = "#000"; ctx.strokeRect(MARGIN.left + 0.5, 2.5, 199, 11);
    ctx.fillStyle = "#000"; ctx.font = "11px sans-serif"; ctx.textAlign = "center";
    [[l.vmin, 0], [(l.vmin + l.vmax) / 2, 100], [l.vmax, 200]].forEach(([v, x]) => ctx.fillText(String(+v.toFixed(3)), MARGIN.left + x, 28));
    ctx.textAlign = "right"; ctx.fillText(l.label, MARGIN.left - 6, 12);
    return canvas;
  }

  function rowsOf(p) {
    return state.rows[p.zoom || p.title] || p.rows.slice();
  }

  function draw() {
    const frame = data.frames[state.frame];
    for (const p of frame.panels) drawPanel(frame, p);
    drawLinks(frame);
    document.body.dataset.view = JSON.stringify({ frame: state.frame, window: timeWindow(frame), t: state.t,
                                                  order: frame.order || null });
  }

  // The order of the location rows: by number, or in the order written. Each location panel holds the
  // other order's cells, rows and ticks in p.alt; choosing an order swaps them.
  const orderBox = document.getElementById("order");
  function swap(p) {
    const other = p.alt, keep = {};
    for (const k of new Set([...Object.keys(p), ...Object.keys(other)])) {
      if (k === "alt" || k === "canvas") continue;
      keep[k] = p[k];
      if (k in other) p[k] = other[k]; else delete p[k];
    }
    p.alt = keep;
  }
  function setOrder(order) {
    for (const frame of data.frames) {
      if (!frame.order || frame.order === order) continue;
      for (const p of frame.panels) if (p.alt) swap(p);
      [frame.order, frame.alt_order] = [frame.alt_order, frame.order];
    }
    state.rows = {};
    for (const input of orderBox.querySelectorAll("input")) input.checked = input.value === order;
    build();
  }
  if (data.frames.some((f) => f.order)) {
    orderBox.hidden = false;
    for (const input of orderBox.querySelectorAll("input")) {
      input.checked = input.value === data.frames[0].order;
      input.addEventListener("change", () => setOrder(input.value));
    }
  }
  state.setOrder = setOrder;  // for tests and the console

  // The link matrix L of the step at the cursor (its column's last step), over the locations drawn, in
  // their current order: L[i, j], how much location i was written right after location j; i upwards, j
  // to the right, as the rows of the location panels.
  function drawLinks(frame) {
    const box = document.getElementById("links"), canvas = document.getElementById("link-matrix");
    const L = frame.links;
    box.hidden = !L;
    if (!L) return;
    const S = 150, M = { left: 44, right: 10, top: 40, bottom: 40 }, gap = 24, heads = L.heads || 1;
    const W = M.left + heads * S + (heads - 1) * gap + M.right, H = M.top + S + M.bottom;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = W * dpr; canvas.height = H * dpr; canvas.style.width = W + "px"; canvas.style.height = H + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = "#000"; ctx.font = "12px sans-serif"; ctx.textAlign = "left";
    const say = (text) => { ctx.fillText(text, 6, 16); canvas.dataset.step = ""; };
    if (L.omitted) { say("Link matrix: " + L.omitted); return; }
    if (state.t === null) { say("Link matrix: point at a step"); return; }
    let col = L.steps.findIndex((s) => s >= state.t);
    if (col < 0) col = L.steps.length - 1;
    const order = frame.order || "index", rows = L.rows[order] || L.rows.index, n = rows.length, Ln = L.locations.length;
    const lut = luts[L.cmap];
    ctx.fillText(`Link matrix L at step ${L.steps[col]}`, 6, 16);
    ctx.font = "11px sans-serif";
    ctx.fillText("L[i, j]: i written right after j", 6, 31);
    const every = Math.max(1, Math.ceil(n / 6));
    for (let h = 0; h < heads; h++) {
      const img = new ImageData(n, n);
      for (let a = 0; a < n; a++) {  // row a (location rows[a]) upwards
        for (let b = 0; b < n; b++) {
          const at = ((col * heads + h) * Ln + rows[a]) * Ln + rows[b];
          const px = ((n - 1 - a) * n + b) * 4;
          if (L.nonfinite && L.nonfinite[at]) img.data.set(data.nonfinite, px);
          else { const k = L.index[at] * 3; img.data.set([lut[k], lut[k + 1], lut[k + 2], 255], px); }
        }
      }
      const off = new OffscreenCanvas(n, n);
      off.getContext("2d").putImageData(img, 0, 0);
      const x0 = M.left + h * (S + gap);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(off, x0, M.top, S, S);
      ctx.strokeStyle = "#000"; ctx.strokeRect(x0 + 0.5, M.top + 0.5, S - 1, S - 1);
      ctx.fillStyle = "#000"; ctx.font = "10px sans-serif";
      for (let a = 0; a < n; a += every) {  // the rows' true locations
        const label = String(L.locations[rows[a]]), c = (a + 0.5) * S / n;
        ctx.textAlign = "right"; ctx.fillText(label, x0 - 3, M.top + S - c + 3);
        ctx.textAlign = "center"; ctx.fillText(label, x0 + c, M.top + S + 12);
      }
      ctx.font = "11px sans-serif"; ctx.textAlign = "center";
      ctx.fillText(heads > 1 ? `j (write head ${h})` : "j", x0 + S / 2, M.top + S + 28);
    }
    ctx.textAlign = "left"; ctx.fillText("i", 4, M.top + S / 2 + 4);
    canvas.dataset.step = String(L.steps[col]);
    canvas.dataset.order = order;
  }

  function drawPanel(frame, p) {
    const ctx = p.canvas.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    const [W, H] = sizeOf(frame, p);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, W + MARGIN.left + MARGIN.right, H + MARGIN.top + MARGIN.bottom);
    ctx.fillStyle = "#000"; ctx.font = "13px sans-serif"; ctx.textAlign = "center";
    ctx.fillText(p.title, MARGIN.left + W / 2, 16);
    if (p.nonfinite_label) {  // the legend of the non-finite colour: under the panel's right end, level with "Time"
      const y0 = MARGIN.top + H + 32;
      ctx.font = "11px sans-serif"; ctx.textAlign = "right";
      ctx.fillText(p.nonfinite_label, MARGIN.left + W, y0);
      const x0 = MARGIN.left + W - ctx.measureText(p.nonfinite_label).width - 14;
      ctx.fillStyle = `rgb(${data.nonfinite[0]}, ${data.nonfinite[1]}, ${data.nonfinite[2]})`;
      ctx.fillRect(x0, y0 - 9, 10, 10);
      ctx.strokeStyle = "#4d4d4d"; ctx.lineWidth = 1; ctx.strokeRect(x0 + 0.5, y0 - 8.5, 9, 9);
      ctx.fillStyle = "#000"; ctx.font = "13px sans-serif"; ctx.textAlign = "center";
    }
    if (!p.present) {
      ctx.fillStyle = "#777"; ctx.fillText(p.empty || "not recorded", MARGIN.left + W / 2, MARGIN.top + H / 2);
      ctx.strokeRect(MARGIN.left, MARGIN.top, W, H);
      return;
    }
    const [t0, t1] = timeWindow(frame), [r0, r1] = rowsOf(p);
    const C = p.cols, R = p.nrows, lut = luts[p.cmap];
    // the cells in view, as an image of one pixel per cell, scaled up without smoothing
    const c0 = Math.max(0, Math.floor(((t0 - p.time[0]) / (p.time[1] - p.time[0])) * C));
    const c1 = Math.min(C, Math.ceil(((t1 - p.time[0]) / (p.time[1] - p.time[0])) * C));
    const q0 = Math.max(0, Math.floor(((r0 - p.rows[0]) / (p.rows[1] - p.rows[0])) * R));
    const q1 = Math.min(R, Math.ceil(((r1 - p.rows[0]) / (p.rows[1] - p.rows[0])) * R));
    const img = new ImageData(Math.max(1, c1 - c0), Math.max(1, q1 - q0));
    for (let i = c0; i < c1; i++) {
      for (let j = q0; j < q1; j++) {
        const at = ((q1 - 1 - j) * (c1 - c0) + (i - c0)) * 4;  // row 0 at the bottom
        if (p.nonfinite && p.nonfinite[i * R + j]) {  // NaN and infinities: over the mask grey too
          img.data.set(data.nonfinite, at);
        } else if (p.unscored && p.unscored[i]) {
          img.data.set(data.mask, at);
        } else {
          const k = p.index[i * R + j] * 3;
          img.data.set([lut[k], lut[k + 1], lut[k + 2], 255], at);
        }
      }
    }
    const off = new OffscreenCanvas(img.width, img.height);
    off.getContext("2d").putImageData(img, 0, 0);
    const x = (t) => MARGIN.left + ((t - t0) / (t1 - t0)) * W;
    const y = (r) => MARGIN.top + H - ((r - r0) / (r1 - r0)) * H;
    const cellT = (i) => p.time[0] + (i / C) * (p.time[1] - p.time[0]);
    const cellR = (j) => p.rows[0] + (j / R) * (p.rows[1] - p.rows[0]);
    ctx.imageSmoothingEnabled = false;
    ctx.save();
    ctx.beginPath(); ctx.rect(MARGIN.left, MARGIN.top, W, H); ctx.clip();
    ctx.drawImage(off, x(cellT(c0)), y(cellR(q1)), x(cellT(c1)) - x(cellT(c0)), y(cellR(q0)) - y(cellR(q1)));
    ctx.strokeStyle = p.ink || "#ffffff"; ctx.setLineDash([4, 4]); ctx.lineWidth = 1;  // ink: on a light panel
    for (const m of frame.markers) { ctx.beginPath(); ctx.moveTo(x(m), MARGIN.top); ctx.lineTo(x(m), MARGIN.top + H); ctx.stroke(); }
    ctx.setLineDash([]);
    ctx.fillStyle = p.ink ? "#8c8c8c" : `rgba(255, 255, 255, ${data.wrapAlpha})`;  // where location numbers wrap from N-1 to 0
    for (const w of p.yticks.wraps) if (w > r0 - 0.5 && w < r1 - 0.5) ctx.fillRect(MARGIN.left, Math.round(y(w + 0.5)), W, 1);
    if (state.t !== null) {  // the cursor, at the same step in every panel
      ctx.strokeStyle = "#00e0ff"; ctx.beginPath();
      ctx.moveTo(x(state.t + 0.5), MARGIN.top); ctx.lineTo(x(state.t + 0.5), MARGIN.top + H); ctx.stroke();
    }
    ctx.restore();
    ctx.strokeStyle = "#000"; ctx.strokeRect(MARGIN.left + 0.5, MARGIN.top + 0.5, W - 1, H - 1);
    ctx.fillStyle = "#000"; ctx.font = "11px sans-serif";
    const xt = ticks(p.xticks, t0, t1, p.time, null), yt = ticks(p.yticks, r0, r1, p.rows, p.modulo);
    p.canvas.dataset.ticks = JSON.stringify({ x: xt, y: yt });  // what is drawn: for tests
    for (const [v, label] of xt) {
      const px = x(v + 0.5); ctx.textAlign = "center";
      ctx.fillText(label, px, MARGIN.top + H + 14);
      ctx.beginPath(); ctx.moveTo(px, MARGIN.top + H); ctx.lineTo(px, MARGIN.top + H + 4); ctx.stroke();
    }
    for (const [v, label] of yt) {
      const py = y(v + 0.5); ctx.textAlign = "right";
      ctx.fillText(label, MARGIN.left - 6, py + 4);
      ctx.beginPath(); ctx.moveTo(MARGIN.left - 4, py); ctx.lineTo(MARGIN.left, py); ctx.stroke();
    }
    const widest = Math.max(0, ...yt.map(([, label]) => ctx.measureText(label).width));  // (at 11px)
    ctx.font = "12px sans-serif"; ctx.textAlign = "center";
    ctx.fillText("Time", MARGIN.left + W / 2, MARGIN.top + H + 32);
    if (widest <= MARGIN.left - 30) {  // room left of the tick labels (named rows say what they are)
      ctx.save(); ctx.translate(14, MARGIN.top + H / 2); ctx.rotate(-Math.PI / 2);
      ctx.fillText(p.ylabel, 0, 0); ctx.restore();
    }
  }

  // Where a mouse event falls: the panel's cell, and the steps and rows it stands for.
  function cellAt(frame, p, event) {
    const rect = p.canvas.getBoundingClientRect();
    const [W, H] = sizeOf(frame, p);
    const px = event.clientX - rect.left - MARGIN.left, py = event.clientY - rect.top - MARGIN.top;
    if (px < 0 || py < 0 || px >= W || py >= H) return null;
    const [t0, t1] = timeWindow(frame), [r0, r1] = rowsOf(p);
    const t = t0 - 0.5 + (px / W) * (t1 - t0), r = r0 - 0.5 + (1 - py / H) * (r1 - r0);
    const i = Math.floor(((t + 0.5 - p.time[0]) / (p.time[1] - p.time[0])) * p.cols);
    const j = Math.floor(((r + 0.5 - p.rows[0]) / (p.rows[1] - p.rows[0])) * p.nrows);
    if (i < 0 || j < 0 || i >= p.cols || j >= p.nrows) return null;
    return { i, j };
  }

  function span(lo, hi, n, count, k) {  // the cells [a, b] of n that column/row k of count stands for
    const a = lo + Math.floor((k * n) / count), b = lo + Math.floor(((k + 1) * n) / count) - 1;
    return [a, Math.max(a, b)];
  }

  function number(v) {  // a value for the readout: 3 decimals, or what a non-finite value is
    return Number.isNaN(v) ? "NaN" : v === Infinity ? "inf" : v === -Infinity ? "-inf" : v.toFixed(3);
  }

  function describe(p, i, j) {
    const T = p.time[1] - p.time[0], Rn = p.rows[1] - p.rows[0];
    const [ta, tb] = span(p.time[0], p.time[1], T, p.cols, i);
    const [ra, rb] = span(p.rows[0], p.rows[1], Rn, p.nrows, j);
    const row = (v) => (p.names ? p.names[v - p.rows[0]] : p.modulo ? ((v % p.modulo) + p.modulo) % p.modulo : v);
    const what = p.ylabel.split(" ")[0].toLowerCase();
    const v = p.value[i * p.nrows + j];
    const steps = ta === tb ? `step ${ta}` : `steps ${ta}-${tb}`;
    let rows = ra === rb ? `${what} ${row(ra)}` : `${what}s ${row(ra)}-${row(rb)}`;
    if (p.names && ra !== rb) {  // named rows are no range: list them
      const all = [];
      for (let r = ra; r <= rb; r++) all.push(row(r));
      rows = `${what}s ${all.length > 4 ? all.slice(0, 3).join(", ") + ", ... " + all[all.length - 1] : all.join(", ")}`;
    }
    const scored = p.unscored && p.unscored[i] ? " (not scored)" : "";
    if (p.series) {  // a bar strip: the value of its column
      return { text: `${p.name} · ${steps} · ${ta !== tb ? data.reduce + " " : ""}${p.series[i].toFixed(3)}`, t: ta };
    }
    const reduced = ta !== tb || ra !== rb ? `${data.reduce} ` : "";
    if (p.peers) {  // a comparison: the same cell of a, of b and of their difference
      const panels = data.frames[state.frame].panels;
      const value = (x) => number(Math.abs(x) < 0.0005 ? 0 : x);  // never "-0.000"
      const values = p.peers.map(([k, tag]) => `${tag} ${value(panels[k].value[i * p.nrows + j])}`).join(" · ");
      return { text: `${p.what} · ${steps} · ${rows} · ${reduced}${values}${scored}`, t: ta };
    }
    const tag = p.tag ? `${p.tag}: ` : "";
    return { text: `${tag}${p.title} · ${steps} · ${rows} · ${reduced}${number(v)}${scored}`, t: ta };
  }

  // One head's addressing stages: the readout's second line says what the head did at the step (or
  // block of steps) of column i: its gate, key strength, sharpening, shift distribution, content peak.
  function stepLine(frame, i) {
    const s = frame.steps;
    const [ta, tb] = span(s.time[0], s.time[1], s.time[1] - s.time[0], s.cols, i);
    const parts = [s.head, ta === tb ? `step ${ta}` : `steps ${ta}-${tb} (${s.reduce})`];
    for (const name of ["gate", "key strength", "sharpening"]) {
      parts.push(s[name] ? `${name} ${s[name][i].toFixed(3)}` : `${name} not recorded`);
    }
    if (s.shift) {
      const S = s.offsets.length;
      parts.push("shift " + s.offsets.map((k, n) => `${k > 0 ? "+" : ""}${k}: ${s.shift[i * S + n].toFixed(3)}`).join(", "));
    } else {
      parts.push("shift not recorded");
    }
    if (!s.peak) parts.push("content weighting not recorded");
    else parts.push(s.peak[i] < 0 ? "content peak: none" : `content peak: location ${s.peak[i]} (${s.peak_value[i].toFixed(3)})`);
    return parts.join(" · ");
  }

  function report(frame, d, i) {  // the readout of a cell, and of its step when the figure has one
    readout.textContent = frame.steps ? `${d.text}\n${stepLine(frame, i)}` : d.text;
  }

  function attach(canvas, frame, p) {
    canvas.addEventListener("mousemove", (e) => {
      if (state.drag) {
        const dt = ((e.clientX - state.drag.x) / sizeOf(frame, p)[0]) * (state.drag.window[1] - state.drag.window[0]);
        const [a, b] = state.drag.window, [lo, hi] = frame.panels[0].time;
        const shift = Math.max(lo - a, Math.min(hi - b, -dt));
        state.window = [a + shift, b + shift];
        draw();
        return;
      }
      if (!p.present) return;
      const cell = cellAt(frame, p, e);
      if (!cell) return;
      const d = describe(p, cell.i, cell.j);
      report(frame, d, cell.i);
      state.t = d.t; state.panel = p; state.cell = cell;
      draw();
    });
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const factor = e.deltaY > 0 ? 1.25 : 0.8;
      const rect = canvas.getBoundingClientRect();
      if (e.shiftKey || e.ctrlKey) {  // the row axis of this panel (not a bar strip's value axis)
        if (p.fixed) return;
        const [a, b] = rowsOf(p), f = 1 - (e.clientY - rect.top - MARGIN.top) / sizeOf(frame, p)[1];
        const at = a + f * (b - a), n = Math.max(2, (b - a) * factor);
        state.rows[p.zoom || p.title] = clampWindow([at - f * n, at + (1 - f) * n], p.rows);
      } else {  // the time axis of every panel
        const [a, b] = timeWindow(frame), f = (e.clientX - rect.left - MARGIN.left) / sizeOf(frame, p)[0];
        const at = a + f * (b - a), n = Math.max(2, (b - a) * factor);
        state.window = clampWindow([at - f * n, at + (1 - f) * n], frame.panels[0].time);
      }
      draw();
    }, { passive: false });
    canvas.addEventListener("mousedown", (e) => { state.drag = { x: e.clientX, window: timeWindow(frame) }; });
    window.addEventListener("mouseup", () => { state.drag = null; });
    canvas.addEventListener("dblclick", () => { state.window = null; state.rows = {}; draw(); });
  }

  function clampWindow([a, b], [lo, hi]) {
    const n = Math.min(b - a, hi - lo);
    a = Math.max(lo, Math.min(a, hi - n));
    return [a, a + n];
  }

  // Keyboard: left and right move the cursor one cell, up and down one row.
  root.addEventListener("keydown", (e) => {
    const frame = data.frames[state.frame];
    const p = state.panel && state.panel.present ? state.panel : frame.panels.find((q) => q.present);
    const cell = state.cell || { i: 0, j: 0 };
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    if (!(e.key in moves)) return;
    e.preventDefault();
    const [di, dj] = moves[e.key];
    state.cell = { i: Math.max(0, Math.min(p.cols - 1, cell.i + di)), j: Math.max(0, Math.min(p.nrows - 1, cell.j + dj)) };
    state.panel = p;
    const d = describe(p, state.cell.i, state.cell.j);
    report(frame, d, state.cell.i); state.t = d.t;
    draw();
  });

  // Several traces: a slider and a play button step through them.
  const slider = document.getElementById("frame");
  const play = document.getElementById("play");
  if (data.frames.length > 1) {
    slider.max = data.frames.length - 1;
    slider.addEventListener("input", () => show(Number(slider.value)));
    let timer = null;
    play.addEventListener("click", () => {
      if (timer) { clearInterval(timer); timer = null; play.textContent = "Play"; return; }
      play.textContent = "Pause";
      timer = setInterval(() => show((state.frame + 1) % data.frames.length), 1000 / data.fps);
    });
  } else {
    document.getElementById("controls").hidden = true;
  }

  function show(k) {
    state.frame = k; slider.value = k; state.panel = null;
    document.getElementById("frame-label").textContent = data.frames[k].label;
    build();
    if (data.curves) drawCurves();
  }

  // A run: its learning curve, with a marker at the snapshot shown.
  function drawCurves() {
    const canvas = document.getElementById("curves");
    const c = data.curves, ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height, m = { left: 58, right: 12, top: 20, bottom: 34 };
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    const xs = c.sequences, ys = c.wrong.map((v) => Math.log10(Math.max(v, 1e-3)));
    const xmax = Math.max(...xs, 1), ymin = -3, ymax = Math.max(...ys, 0) + 0.2;
    const x = (v) => m.left + (v / xmax) * (W - m.left - m.right);
    const y = (v) => m.top + (1 - (v - ymin) / (ymax - ymin)) * (H - m.top - m.bottom);
    ctx.strokeStyle = "#000"; ctx.strokeRect(m.left, m.top, W - m.left - m.right, H - m.top - m.bottom);
    ctx.strokeStyle = "#df3a6a"; ctx.lineWidth = 1.5; ctx.beginPath();
    xs.forEach((v, k) => (k ? ctx.lineTo(x(v), y(ys[k])) : ctx.moveTo(x(v), y(ys[k])))); ctx.stroke();
    ctx.strokeStyle = "#555"; ctx.setLineDash([4, 4]); ctx.lineWidth = 1; ctx.beginPath();
    ctx.moveTo(m.left, y(Math.log10(c.threshold))); ctx.lineTo(W - m.right, y(Math.log10(c.threshold))); ctx.stroke();
    ctx.setLineDash([]);
    const at = data.frames[state.frame].sequences;
    if (at !== null && at !== undefined) {
      ctx.strokeStyle = "#2447c0"; ctx.lineWidth = 2; ctx.beginPath();
      ctx.moveTo(x(at), m.top); ctx.lineTo(x(at), H - m.bottom); ctx.stroke();
    }
    ctx.fillStyle = "#000"; ctx.font = "11px sans-serif"; ctx.textAlign = "right";
    for (let e = -3; e <= Math.floor(ymax); e++) ctx.fillText(String(10 ** e), m.left - 4, y(e) + 4);
    ctx.textAlign = "center";
    ctx.fillText("sequences seen", (W + m.left) / 2, H - 6);
    ctx.textAlign = "right"; ctx.fillText(String(xmax.toLocaleString("en")), W - m.right, H - m.bottom + 14);
    ctx.textAlign = "center";
    ctx.fillText("0", m.left, H - m.bottom + 14);
    ctx.fillText("held-out wrong bits per sequence (log), dashed: converged below " + c.threshold, (W + m.left) / 2, 13);
  }

  show(0);
})();
