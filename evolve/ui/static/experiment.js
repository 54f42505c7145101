// The experiment page: score and time over wall time, and the lineage tree, both drawn by Apache
// ECharts from /api/experiments/ID. Strings reach the page as canvas text or through
// echarts.format.encodeHTML (tooltips); the diff panel is HTML rendered and escaped by the server.
(function () {
  "use strict";
  const experiment = document.getElementById("experiment-script").dataset.experiment;
  const STATUS_COLOURS = {
    pending: "#9aa0a6", running: "#f9ab00", rejected: "#d93025",
    failed: "#a142f4", evaluated: "#1a73e8", champion: "#188038",
  };
  const ORIGIN_SYMBOLS = { seed: "diamond", llm: "circle", mutator: "rect", crossover: "triangle" };
  const FIELDS = ["component", "origin", "status", "island"];
  const BIG_TREE = 400; // above this many candidates the tree starts collapsed off the champion's path
  const esc = echarts.format.encodeHTML;

  const plot = echarts.init(document.getElementById("plot"));
  const tree = echarts.init(document.getElementById("tree"));
  const panel = document.getElementById("panel");
  const state = {
    data: null, byId: new Map(), collapsed: null, filters: {}, colourBy: "status", selected: null, largePlot: 2000,
  };
  FIELDS.forEach(function (f) { state.filters[f] = ""; });

  function matches(node) {
    return FIELDS.every(function (f) { return state.filters[f] === "" || String(node[f]) === state.filters[f]; });
  }

  function time(node) {  // epoch milliseconds, as the server sends them
    return node.evaluated_at !== null ? node.evaluated_at : node.created_at;
  }

  function compact(value) {
    return Math.abs(value) >= 1e5 ? value.toExponential(1) : String(Number(value.toPrecision(6)));
  }

  function label(node) {
    const score = node.score === null ? "-" : node.score.toPrecision(6);
    const seconds = node.time_mean === null ? "-" : node.time_mean.toFixed(4) + " s";
    const accuracy = node.accuracy_mean === null ? "-" : (100 * node.accuracy_mean).toFixed(2) + "%";
    return "#" + node.id + " " + esc(node.component) + " · " + esc(node.origin) + " · " + esc(node.status) +
      "<br>score " + score + " · " + seconds + " · " + accuracy + (node.verdict && node.verdict !== node.status ? "<br>" + esc(node.verdict) : "");
  }

  // ---------------------------------------------------------------- plot

  function championSteps(field) {
    const steps = [];
    state.data.champions.forEach(function (change) {
      const champion = state.byId.get(change.candidate_id);
      if (champion && champion[field] !== null) steps.push([Date.parse(change.created_at), champion[field], champion.id]);
    });
    const last = state.data.nodes.reduce(function (m, n) { return Math.max(m, time(n)); }, 0);
    if (steps.length && last > steps[steps.length - 1][0]) {
      steps.push([last, steps[steps.length - 1][1], steps[steps.length - 1][2]]);
    }
    return steps;
  }

  function points(field) {
    return state.data.nodes.filter(function (n) { return n.score !== null && n[field] !== null && matches(n); })
      .map(function (n) {
        return {
          value: [time(n), n[field]], id: n.id, symbol: ORIGIN_SYMBOLS[n.origin] || "circle",
          itemStyle: { color: STATUS_COLOURS[n.status] || "#5f6368" },
        };
      });
  }

  // Above state.largePlot points a scatter is drawn in ECharts' large mode (one path per status instead of
  // an element per point: at 8,000 points the plot took 0.6-1 s to draw, now a few ms). The series of one
  // scatter share its name, so that the legend shows and hides them together.

  function drawPlot() {
    const scatter = function (name, field, axis) {
      const data = points(field);
      if (data.length <= state.largePlot) {
        return [{
          name: name, type: "scatter", xAxisIndex: axis, yAxisIndex: axis, data: data, symbolSize: 9,
          large: false, progressive: 0, emphasis: { scale: 1.6 }, itemStyle: { color: "#5f6368" },
        }];
      }
      const byStatus = new Map();
      data.forEach(function (p) {
        const status = state.byId.get(p.id).status;
        if (!byStatus.has(status)) byStatus.set(status, []);
        byStatus.get(status).push([p.value[0], p.value[1], p.id]);
      });
      return Array.from(byStatus, function (entry) {
        return {
          name: name, type: "scatter", xAxisIndex: axis, yAxisIndex: axis, data: entry[1], symbolSize: 5,
          large: true, largeThreshold: 0, itemStyle: { color: STATUS_COLOURS[entry[0]] || "#5f6368" },
        };
      });
    };
    const step = function (name, field, axis) {
      return {
        name: name, type: "line", step: "end", xAxisIndex: axis, yAxisIndex: axis, data: championSteps(field),
        symbol: "none", lineStyle: { width: 2, color: STATUS_COLOURS.champion }, itemStyle: { color: STATUS_COLOURS.champion },
        z: 1, silent: true,
      };
    };
    plot.setOption({
      animation: false,
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          const node = state.byId.get(pointId(p));
          return node ? (p.seriesType === "line" ? "champion " : "") + label(node) : "";
        },
      },
      legend: { data: ["score", "champion score", "time (s)", "champion time"], top: 0 },
      grid: [{ left: 90, right: 40, top: 35, height: "34%" }, { left: 90, right: 40, top: "55%", height: "30%" }],
      xAxis: [{ type: "time", gridIndex: 0 }, { type: "time", gridIndex: 1 }],
      yAxis: [
        { type: "value", gridIndex: 0, name: "score", scale: true, axisLabel: { formatter: compact } },
        { type: "value", gridIndex: 1, name: "time (s)", scale: true, axisLabel: { formatter: compact } },
      ],
      dataZoom: [
        { type: "inside", xAxisIndex: [0, 1] }, { type: "slider", xAxisIndex: [0, 1], bottom: 5 },
        { type: "slider", yAxisIndex: 0, right: 5, width: 14, filterMode: "none", showDetail: false },  // scores can span decades
      ],
      series: scatter("score", "score", 0).concat([step("champion score", "score", 0)],
        scatter("time (s)", "time_mean", 1), [step("champion time", "time_mean", 1)]),
    }, { replaceMerge: ["series"] });
  }

  function pointId(p) {  // a point is {value, id}, or [time, value, id] in large mode
    return p.data && (p.data.id !== undefined ? p.data.id : p.data[2]);
  }

  plot.on("click", function (p) {
    if (p.seriesType === "scatter" && pointId(p) !== undefined) location.href = "/candidates/" + pointId(p);
  });

  // ---------------------------------------------------------------- tree

  function children() {
    const ids = new Set(state.data.nodes.map(function (n) { return n.id; }));
    const below = new Map();
    const roots = [];
    state.data.nodes.forEach(function (n) {
      if (n.parent_id !== null && ids.has(n.parent_id)) {
        if (!below.has(n.parent_id)) below.set(n.parent_id, []);
        below.get(n.parent_id).push(n);
      } else {
        roots.push(n);
      }
    });
    return { roots: roots, below: below };
  }

  function scoreColours() {
    const scored = state.data.nodes.filter(function (n) { return n.score !== null; })
      .sort(function (a, b) { return a.score - b.score; });
    const colours = new Map();
    scored.forEach(function (n, i) {
      const t = scored.length > 1 ? i / (scored.length - 1) : 1;
      colours.set(n.id, echarts.color.lerp(t, ["#d93025", "#f9ab00", "#188038"]));
    });
    return colours;
  }

  function defaultCollapsed(layout) {
    const collapsed = new Set();
    if (state.data.nodes.length <= BIG_TREE) return collapsed;
    const path = new Set(state.data.champion_path);
    layout.below.forEach(function (_, id) { if (!path.has(id)) collapsed.add(id); });
    return collapsed;
  }

  function drawTree() {
    const layout = children();
    if (state.collapsed === null) state.collapsed = defaultCollapsed(layout);
    const path = new Set(state.data.champion_path);
    const colours = state.colourBy === "score" ? scoreColours() : null;
    const many = state.data.nodes.length > 150;
    const item = function (n) {
      const kids = layout.below.get(n.id) || [];
      const onPath = path.has(n.id);
      const colour = colours ? (colours.get(n.id) || "#bdc1c6") : (STATUS_COLOURS[n.status] || "#5f6368");
      const dim = matches(n) ? 1 : 0.15;
      const folded = state.collapsed.has(n.id);
      return {
        name: "#" + n.id, id: n.id, value: n.score,
        symbol: ORIGIN_SYMBOLS[n.origin] || "circle",
        symbolSize: onPath ? 13 : 8,
        itemStyle: {
          color: colour, opacity: dim,
          borderColor: onPath ? "#fbbc04" : (kids.length && folded ? "#202124" : "#ffffff"),
          borderWidth: onPath ? 3 : (kids.length && folded ? 2 : 1),
        },
        lineStyle: onPath ? { color: "#fbbc04", width: 3, opacity: 1 } : { color: "#c0c4c8", width: 1, opacity: dim },
        label: { show: !many || n.status === "champion" || n.parent_id === null, opacity: dim },
        // A collapsed node's subtree is left out of the chart's data, not handed over folded: at 10,000
        // candidates ECharts built and styled every hidden node on each draw (0.2-0.6 s); now it gets
        // the visible ones, and a double-click draws a node's children when it opens.
        children: folded ? [] : kids.map(item),
      };
    };
    const roots = layout.roots.map(item);
    const data = roots.length === 1 ? roots : [{
      name: "experiment", id: -1, children: roots, symbolSize: 4, itemStyle: { color: "#5f6368" }, label: { show: false },
    }];
    const previous = tree.getOption() && tree.getOption().series;  // keep the reader's zoom and pan across redraws
    const view = previous && previous[0] ? { zoom: previous[0].zoom || 1, center: previous[0].center } : { zoom: 1 };
    tree.setOption({
      animation: false,
      tooltip: {
        trigger: "item", confine: true,
        formatter: function (p) { const n = state.byId.get(p.data.id); return n ? label(n) : ""; },
      },
      series: [{
        type: "tree", data: data, orient: "LR", layout: "orthogonal", roam: true, expandAndCollapse: false,
        zoom: view.zoom, center: view.center,
        left: 40, right: 60, top: 20, bottom: 20, symbolSize: 8, edgeShape: "curve",
        label: { position: "top", fontSize: 11, color: "#202124" },
        leaves: { label: { position: "right", verticalAlign: "middle", align: "left" } },
        emphasis: { focus: "ancestor", label: { show: true } },
        animationDuration: 0, animationDurationUpdate: 0,
      }],
    }, { replaceMerge: ["series"] });
  }

  async function showPanel(id) {
    state.selected = id;
    const reply = await fetch("/candidates/" + id + "/diff", { cache: "no-store" });
    if (state.selected !== id) return;
    // The fragment is rendered by the server with every string escaped.
    panel.innerHTML = reply.ok ? await reply.text() : "<p class=\"empty\">could not load #" + Number(id) + "</p>";
  }

  tree.on("click", function (p) {
    if (p.data && p.data.id > 0) showPanel(p.data.id);
  });
  tree.on("dblclick", function (p) {
    const id = p.data && p.data.id;
    if (!(id > 0)) return;
    if (state.collapsed.has(id)) state.collapsed.delete(id); else state.collapsed.add(id);
    drawTree();
  });

  document.getElementById("expand-all").addEventListener("click", function () {
    state.collapsed = new Set();
    drawTree();
  });
  document.getElementById("collapse-champion").addEventListener("click", function () {
    const layout = children();
    const path = new Set(state.data.champion_path);
    state.collapsed = new Set();
    layout.below.forEach(function (_, id) { if (!path.has(id)) state.collapsed.add(id); });
    drawTree();
  });
  document.getElementById("fit").addEventListener("click", function () {
    tree.setOption({ series: [{ zoom: 1, center: null }] });
  });
  document.getElementById("colour-by").addEventListener("change", function (e) {
    state.colourBy = e.target.value;
    drawTree();
  });

  // ---------------------------------------------------------------- filters and data

  function fillFilters() {
    FIELDS.forEach(function (field) {
      const select = document.getElementById("filter-" + field);
      const values = Array.from(new Set(state.data.nodes.map(function (n) { return String(n[field]); }))).sort();
      const known = new Set(Array.from(select.options).map(function (o) { return o.value; }));
      values.forEach(function (v) { if (!known.has(v)) select.add(new Option(v, v)); });
    });
    const shown = state.data.nodes.filter(matches).length;
    document.getElementById("filter-count").textContent = shown + " of " + state.data.nodes.length + " candidates match";
  }

  FIELDS.forEach(function (field) {
    document.getElementById("filter-" + field).addEventListener("change", function (e) {
      state.filters[field] = e.target.value;
      fillFilters();
      drawPlot();
      drawTree();
    });
  });

  async function load() {
    const first = window.evolveFirstData;  // started by experiment-data.js, before ECharts loaded
    window.evolveFirstData = null;
    const reply = await (first || fetch("/api/experiments/" + encodeURIComponent(experiment), { cache: "no-store" }));
    if (!reply.ok) throw new Error("the data request answered " + reply.status);
    const data = await reply.json();
    // Each candidate comes as a row of data.columns (half the bytes of an object each): objects from here on.
    data.nodes = data.nodes.map(function (row) {
      const node = {};
      data.columns.forEach(function (column, i) { node[column] = row[i]; });
      return node;
    });
    // Redraw only what changed: a new sample or stage alone changes neither chart.
    const plotKey = JSON.stringify([data.champions.length, data.nodes.map(function (n) {
      return [n.id, n.status, n.score, n.time_mean, n.evaluated_at];
    })]);
    const treeKey = JSON.stringify([data.champion_path, data.nodes.map(function (n) { return [n.id, n.status, n.score]; })]);
    state.data = data;
    state.byId = new Map(data.nodes.map(function (n) { return [n.id, n]; }));
    fillFilters();
    if (plotKey !== state.plotKey) drawPlot();
    if (treeKey !== state.treeKey) drawTree();
    state.plotKey = plotKey;
    state.treeKey = treeKey;
    document.body.dataset.loaded = String(state.data.nodes.length);
  }

  window.addEventListener("resize", function () { plot.resize(); tree.resize(); });
  window.evolveRefresh = load;

  // For the browser tests and for debugging from the console: what the charts actually drew.
  function drawn(chart, seriesIndex) {
    const series = chart.getModel().getSeriesByIndex(seriesIndex);
    const list = series.getData();
    const out = [];
    for (let i = 0; i < list.count(); i++) {
      const el = list.getItemGraphicEl(i);
      const raw = list.getRawDataItem(i);
      if (el && !el.invisible && raw && raw.id > 0) {
        const at = el.transformCoordToGlobal(0, 0);
        out.push({ id: raw.id, x: at[0], y: at[1] });
      }
    }
    return out;
  }
  window.evolveUI = {
    plot: plot, tree: tree, state: state, load: load, drawPlot: function () { drawPlot(); }, drawTree: function () { drawTree(); },
    treeNodes: function () { return drawn(tree, 0); },
    plotPoints: function () { return drawn(plot, 0); },
    plotCount: function () {  // the points of the score plot, drawn one by one or in large mode
      return plot.getModel().getSeries().filter(function (s) { return s.name === "score"; })
        .reduce(function (n, s) { return n + s.getRawData().count(); }, 0);
    },
  };

  load().catch(function (error) {
    document.getElementById("live-status").textContent = "could not load the experiment: " + error.message;
  });
})();
