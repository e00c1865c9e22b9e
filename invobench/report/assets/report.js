(function(){
"use strict";
var DATA = JSON.parse(document.getElementById("ib-data").textContent);
function fmt(v, kind){
  if (v === null || v === undefined || v === "") return "";
  if (kind === "int") return Number(v).toLocaleString("en-US");
  if (kind === "num") { var a = Math.abs(v); return (a !== 0 && (a < 1e-3 || a >= 1e6)) ? Number(v).toExponential(3) : String(Number(Number(v).toPrecision(4))); }
  if (kind === "bytes") { var u = ["B","KiB","MiB","GiB","TiB"], x = Number(v), i = 0; while (Math.abs(x) >= 1024 && i < u.length - 1) { x /= 1024; i++; } return (i ? x.toPrecision(3) : String(x)) + " " + u[i]; }
  return String(v);
}
function makeTable(host, spec){
  var cols = spec.columns, rows = spec.rows, pageSize = spec.pageSize || 100;
  var hay = rows.map(function(r){ return r.map(function(v, j){ return fmt(v, cols[j].kind); }).join("\u0001").toLowerCase(); });
  var statusCol = -1; cols.forEach(function(c, j){ if (c.kind === "status" && statusCol < 0) statusCol = j; });
  var state = {filter: "", status: "", sortCol: -1, sortDir: 1, page: 0};
  var controls = document.createElement("div"); controls.className = "controls";
  var input = document.createElement("input"); input.type = "search"; input.className = "filter";
  input.placeholder = spec.placeholder || "filter"; input.setAttribute("aria-label", "filter rows");
  controls.appendChild(input);
  var select = null;
  if (statusCol >= 0) {
    select = document.createElement("select"); select.className = "status-filter";
    var seen = {}; rows.forEach(function(r){ seen[r[statusCol]] = (seen[r[statusCol]] || 0) + 1; });
    var opt = document.createElement("option"); opt.value = ""; opt.textContent = "any " + cols[statusCol].label; select.appendChild(opt);
    Object.keys(seen).sort().forEach(function(s){ var o = document.createElement("option"); o.value = s; o.textContent = s + " (" + seen[s] + ")"; select.appendChild(o); });
    controls.appendChild(select);
  }
  var prev = document.createElement("button"); prev.textContent = "◀ prev"; prev.className = "prev";
  var next = document.createElement("button"); next.textContent = "next ▶"; next.className = "next";
  var count = document.createElement("span"); count.className = "count";
  controls.appendChild(prev); controls.appendChild(next); controls.appendChild(count);
  var wrap = document.createElement("div"); wrap.className = "wrap";
  var table = document.createElement("table"), thead = document.createElement("thead"), tbody = document.createElement("tbody");
  var tr = document.createElement("tr");
  cols.forEach(function(c, j){
    var th = document.createElement("th"); th.textContent = c.label; th.title = "sort by " + c.label;
    th.addEventListener("click", function(){ if (state.sortCol === j) state.sortDir = -state.sortDir; else { state.sortCol = j; state.sortDir = 1; } state.page = 0; render(); });
    tr.appendChild(th);
  });
  thead.appendChild(tr); table.appendChild(thead); table.appendChild(tbody); wrap.appendChild(table);
  host.appendChild(controls); host.appendChild(wrap);
  var view = [];
  function compute(){
    var words = state.filter.toLowerCase().split(/\s+/).filter(function(w){ return w.length > 0; });
    view = [];
    for (var i = 0; i < rows.length; i++) {
      if (state.status && rows[i][statusCol] !== state.status) continue;
      var ok = true;
      for (var w = 0; w < words.length; w++) { if (hay[i].indexOf(words[w]) < 0) { ok = false; break; } }
      if (ok) view.push(i);
    }
    if (state.sortCol >= 0) {
      var j = state.sortCol, dir = state.sortDir, numeric = cols[j].kind !== "text" && cols[j].kind !== "status";
      view.sort(function(a, b){
        var x = rows[a][j], y = rows[b][j];
        if (x === null || x === undefined || x === "") return (y === null || y === undefined || y === "") ? a - b : 1;
        if (y === null || y === undefined || y === "") return -1;
        var c = numeric ? (x - y) : String(x).localeCompare(String(y));
        return c !== 0 ? dir * c : a - b;
      });
    }
  }
  function render(){
    compute();
    var pages = Math.max(1, Math.ceil(view.length / pageSize));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * pageSize, end = Math.min(view.length, start + pageSize);
    var frag = document.createDocumentFragment();
    for (var k = start; k < end; k++) {
      var r = rows[view[k]], tr = document.createElement("tr");
      for (var j = 0; j < cols.length; j++) {
        var td = document.createElement("td"), kind = cols[j].kind;
        td.textContent = fmt(r[j], kind);
        td.className = (kind === "text") ? "text" : (kind === "status" ? "status-" + String(r[j]).replace(/[^a-z ]/gi, "").replace(/ /g, "-") : "num");
        tr.appendChild(td);
      }
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
    Array.prototype.forEach.call(tr_head(), function(th, j){ th.className = j === state.sortCol ? (state.sortDir > 0 ? "sorted-asc" : "sorted-desc") : ""; });
    count.textContent = (view.length ? (start + 1) + "–" + end : "0") + " of " + view.length.toLocaleString("en-US") + " matching (" + rows.length.toLocaleString("en-US") + " in all), page " + (state.page + 1) + "/" + pages;
    host.setAttribute("data-matching", String(view.length));
    prev.disabled = state.page === 0; next.disabled = state.page >= pages - 1;
  }
  function tr_head(){ return thead.querySelectorAll("th"); }
  input.addEventListener("input", function(){ state.filter = input.value; state.page = 0; render(); });
  if (select) select.addEventListener("change", function(){ state.status = select.value; state.page = 0; render(); });
  prev.addEventListener("click", function(){ state.page--; render(); });
  next.addEventListener("click", function(){ state.page++; render(); });
  render();
}
Object.keys(DATA.tables).forEach(function(id){ var host = document.getElementById(id); if (host) makeTable(host, DATA.tables[id]); });
var config = {responsive: true, displaylogo: false, showLink: false, showEditInChartStudio: false, showSendToCloud: false};
DATA.figures.forEach(function(f){ Plotly.newPlot(f.id, f.data, f.layout, config); });
document.body.setAttribute("data-rendered", "1");
})();
