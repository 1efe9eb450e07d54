// attnviz compare report: every run's held-out curve against sequences seen and against training
// time, with a readout of the nearest evaluation (run, step, value). Data in window.ATTNVIZ_REPORT.
(function () {
  "use strict";
  const data = window.ATTNVIZ_REPORT;
  const readout = document.getElementById("curve-readout");
  // As in the PNG (plot/compare.py, log_floor): a cost that stays well above 0 on a log axis from
  // data.floor; otherwise symlog, linear below the threshold and log above, 0 at the foot.
  const LIN = data.threshold, FLOOR = data.floor;
  const sy = FLOOR ? (v) => Math.log10(Math.max(v, FLOOR) / FLOOR)
    : (v) => (v <= LIN ? v / LIN : 1 + Math.log10(v / LIN));
  const TICKS = FLOOR ? [1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000].filter((v) => v >= FLOOR)
    : [0, LIN, 1, 10, 100];

  function panel(id, key, xlabel) {
    const canvas = document.getElementById(id), ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height, m = { left: 60, right: 12, top: 12, bottom: 34 };
    const xmax = Math.max(1, ...data.runs.map((r) => (r[key].length ? r[key][r[key].length - 1] : 0)));
    const ymax = Math.max(sy(1), ...data.runs.flatMap((r) => r.wrong.map(sy))) * 1.05;
    const x = (v) => m.left + (v / xmax) * (W - m.left - m.right);
    const y = (v) => m.top + (1 - sy(v) / ymax) * (H - m.top - m.bottom);
    function draw(hot) {
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
      ctx.strokeStyle = "#000"; ctx.lineWidth = 1; ctx.strokeRect(m.left, m.top, W - m.left - m.right, H - m.top - m.bottom);
      data.runs.forEach((r, k) => {
        ctx.strokeStyle = r.colour; ctx.globalAlpha = hot === null || hot === k ? 1 : 0.35;
        ctx.lineWidth = hot === k ? 2.5 : 1; ctx.beginPath();
        r[key].forEach((v, i) => (i ? ctx.lineTo(x(v), y(r.wrong[i])) : ctx.moveTo(x(v), y(r.wrong[i]))));
        ctx.stroke();
      });
      ctx.globalAlpha = 1; ctx.strokeStyle = "#444"; ctx.setLineDash([4, 4]); ctx.beginPath();
      ctx.moveTo(m.left, y(LIN)); ctx.lineTo(W - m.right, y(LIN)); ctx.stroke(); ctx.setLineDash([]);
      ctx.fillStyle = "#000"; ctx.font = "11px sans-serif"; ctx.textAlign = "right";
      TICKS.filter((v) => sy(v) <= ymax).forEach((v) => ctx.fillText(String(v), m.left - 4, y(v) + 4));
      ctx.textAlign = "center"; ctx.fillText("0", m.left, H - m.bottom + 14);
      ctx.textAlign = "right"; ctx.fillText(Math.round(xmax).toLocaleString("en"), W - m.right, H - m.bottom + 14);
      ctx.textAlign = "center"; ctx.fillText(xlabel, (W + m.left) / 2, H - 6);
      ctx.save(); ctx.translate(12, (H + m.top - m.bottom) / 2); ctx.rotate(-Math.PI / 2);
      ctx.fillText(data.label, 0, 0); ctx.restore();
    }
    canvas.addEventListener("mousemove", (ev) => {
      const b = canvas.getBoundingClientRect();
      const px = (ev.clientX - b.left) * (W / b.width), py = (ev.clientY - b.top) * (H / b.height);
      let best = null;
      data.runs.forEach((r, k) => r[key].forEach((v, i) => {
        const d = Math.hypot(x(v) - px, y(r.wrong[i]) - py);
        if (best === null || d < best.d) best = { d, k, i };
      }));
      if (best === null || best.d > 20) { draw(null); readout.textContent = ""; return; }
      const r = data.runs[best.k], i = best.i;
      draw(best.k);
      readout.textContent = `${r.name} (${r.group}): step ${r.steps[i].toLocaleString("en")}, ` +
        `${r.sequences[i].toLocaleString("en")} sequences, ${r.seconds[i].toFixed(1)} s: ` +
        `${r.wrong[i]} ${data.label}`;
    });
    canvas.addEventListener("mouseleave", () => { draw(null); readout.textContent = ""; });
    draw(null);
  }
  panel("by-sequences", "sequences", "sequences seen");
  panel("by-seconds", "seconds", "training time (s)");
})();
