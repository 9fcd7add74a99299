// Tollgate console and portal: the little JavaScript the pages use. Everything works without it; this
// draws the usage charts (uPlot, served by the worker) from the JSON in each chart's data-chart
// attribute. No inline script anywhere: the pages' CSP allows scripts from this origin only.

function drawChart(el) {
  let data;
  try {
    data = JSON.parse(el.dataset.chart);
  } catch {
    return;
  }
  if (!window.uPlot || !Array.isArray(data.x) || data.x.length === 0) return;
  const accent = getComputedStyle(document.documentElement).getPropertyValue("--tg-accent").trim() || "#3355cc";
  const series = [
    {},
    { label: data.label || "used", stroke: accent, fill: `${accent}55`, paths: uPlot.paths.bars({ size: [0.6, 48] }) },
  ];
  const columns = [data.x, data.values];
  if (data.limit !== null && data.limit !== undefined) {
    series.push({ label: "limit", stroke: "#c0392b", dash: [6, 4], width: 1.5, points: { show: false } });
    columns.push(data.x.map(() => data.limit));
  }
  const width = Math.max(280, Math.min(el.clientWidth || 560, 720));
  const opts = {
    width,
    height: 180,
    series,
    legend: { show: true },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.15)] } },
    axes: [{}, { size: 60 }],
  };
  el.textContent = "";
  el.classList.add("drawn");
  new uPlot(opts, columns, el);
}

function init() {
  for (const el of document.querySelectorAll("[data-chart]")) drawChart(el);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();
document.addEventListener("htmx:afterSettle", init);
