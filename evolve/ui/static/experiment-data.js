// Starts the experiment page's data request before ECharts (1.1 MB of script) is parsed, so that the
// server's work and the transfer overlap it; experiment.js takes this first reply from
// window.evolveFirstData and fetches every later one itself.
(function () {
  "use strict";
  const experiment = document.currentScript.dataset.experiment;
  window.evolveFirstData = fetch("/api/experiments/" + encodeURIComponent(experiment), { cache: "no-store" });
})();
