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
  if (!window.uPlot || !Array.isArray(data.labels) || data.labels.length === 0) return;
  // One bar per period, oldest first, labelled with its start; the limit as a dashed line.
  const labels = data.labels;
  const x = labels.map((_, i) => i);
  const accent = getComputedStyle(document.documentElement).getPropertyValue("--tg-accent").trim() || "#3355cc";
  const series = [
    {},
    {
      label: "used",
      stroke: accent,
      fill: `${accent}66`,
      paths: uPlot.paths.bars({ size: [0.6, 48] }),
      points: { show: false },
    },
  ];
  const columns = [x, data.values];
  if (data.limit !== null && data.limit !== undefined) {
    series.push({ label: "limit", stroke: "#c0392b", dash: [6, 4], width: 1.5, points: { show: false } });
    columns.push(x.map(() => data.limit));
  }
  const top = Math.max(1, data.limit ?? 0, ...data.values) * 1.1;
  const opts = {
    width: Math.max(240, Math.min(el.clientWidth || 360, 720)),
    height: 160,
    series,
    legend: { show: false },
    cursor: { show: false },
    scales: { x: { time: false, range: [-0.5, labels.length - 0.5] }, y: { range: [0, top] } },
    axes: [{ incrs: [1], values: (_u, splits) => splits.map((i) => labels[i] ?? "") }, { size: 64 }],
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
