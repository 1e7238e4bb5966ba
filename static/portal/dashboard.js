// Draws the dashboard charts from the JSON the page embeds (#dashboard-data) with the vendored Chart.js.
(function () {
  var data = JSON.parse(document.getElementById("dashboard-data").textContent);
  var brand = getComputedStyle(document.documentElement).getPropertyValue("--brand").trim() || "#4f46e5";
  // A fresh options object per chart: Chart.js fills in the options it is given (scales...).
  function options(legend, extra) {
    return Object.assign({ responsive: true, maintainAspectRatio: false, animation: false,
      plugins: { legend: legend ? { display: true, position: legend } : { display: false } } }, extra || {});
  }
  var wholeNumbers = { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } };
  window.dashboardCharts = {
    calls: new Chart(document.getElementById("chart-calls"), {
      type: "bar", data: { labels: data.days, datasets: [{ label: "Calls", data: data.calls, backgroundColor: brand }] },
      options: options(null, wholeNumbers),
    }),
    minutes: new Chart(document.getElementById("chart-minutes"), {
      type: "line", data: { labels: data.days, datasets: [{ label: "Minutes", data: data.minutes, borderColor: brand, fill: false }] },
      options: options(null, { scales: { y: { beginAtZero: true } } }),
    }),
    latency: new Chart(document.getElementById("chart-latency"), {
      type: "line",
      data: { labels: data.days, datasets: [
        { label: "Average", data: data.avg_ms, borderColor: brand, spanGaps: true },
        { label: "p95", data: data.p95_ms, borderColor: "#f59e0b", spanGaps: true },
      ] },
      options: options("top", { scales: { y: { beginAtZero: true } } }),
    }),
    outcomes: new Chart(document.getElementById("chart-outcomes"), {
      type: "doughnut",
      data: { labels: data.outcome_labels, datasets: [{ data: data.outcome_counts,
        backgroundColor: ["#4f46e5", "#10b981", "#f59e0b", "#ef4444", "#6b7280", "#0ea5e9", "#a855f7", "#84cc16"] }] },
      options: options("right"),
    }),
  };
})();
