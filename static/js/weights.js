// The weight-matrix page: hovering a cell names the source and target units, the strength
// (read from the .npy the page offers for download) and the stored kernel; clicking opens the
// target unit. The rows' and columns' order comes from the server, as the ticks do.
(function () {
  "use strict";
  var source = document.getElementById("weights-data");
  var svg = document.querySelector("svg.weights");
  if (!source || !svg) return;
  var data = JSON.parse(source.textContent);
  var cells = svg.querySelector(".cells");
  var hoverRow = svg.querySelector(".hover-row");
  var hoverCol = svg.querySelector(".hover-col");
  var tip = document.getElementById("weights-tip");
  var figure = svg.parentNode;
  var rowsCount = data.shape[0], colsCount = data.shape[1];
  var strengths = null;
  var kernelRows = {};
  var current = null;

  function half(h) {
    var sign = h & 0x8000 ? -1 : 1, exponent = (h >> 10) & 0x1f, fraction = h & 0x3ff;
    if (exponent === 0) return sign * Math.pow(2, -14) * (fraction / 1024);
    if (exponent === 31) return fraction ? NaN : sign * Infinity;
    return sign * Math.pow(2, exponent - 15) * (1 + fraction / 1024);
  }

  function parseNpy(buffer) {
    var bytes = new Uint8Array(buffer), view = new DataView(buffer);
    var major = bytes[6], start = major === 1 ? 10 : 12;
    var length = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
    var header = new TextDecoder("latin1").decode(bytes.subarray(start, start + length));
    var descr = /'descr':\s*'([^']+)'/.exec(header)[1];
    if (/'fortran_order':\s*True/.test(header)) throw new Error("Fortran-ordered matrix");
    var offset = start + length, count = rowsCount * colsCount, out = new Float32Array(count);
    if (descr === "<f2") {
      var raw = new Uint16Array(buffer.slice(offset, offset + 2 * count));
      for (var i = 0; i < count; i++) out[i] = half(raw[i]);
    } else if (descr === "<f4") {
      out.set(new Float32Array(buffer.slice(offset, offset + 4 * count)));
    } else {
      throw new Error("unexpected dtype " + descr);
    }
    return out;
  }

  fetch(data.npy).then(function (response) {
    if (!response.ok) throw new Error(response.status);
    return response.arrayBuffer();
  }).then(function (buffer) {
    strengths = parseNpy(buffer);
    if (current) show(current);
  }).catch(function () { strengths = false; });

  function fill(url, index) { return url.replace(data.sentinel, String(index)); }

  function cellAt(event) {
    var box = cells.getBoundingClientRect();
    var x = Math.floor(((event.clientX - box.left) / box.width) * colsCount);
    var y = Math.floor(((event.clientY - box.top) / box.height) * rowsCount);
    if (x < 0 || y < 0 || x >= colsCount || y >= rowsCount) return null;
    return { x: x, y: y, source: data.cols[x], target: data.rows[y], clientX: event.clientX, clientY: event.clientY };
  }

  function drawKernel(kernel) {
    var k = kernel.length, scale = Math.max(6, Math.floor(60 / k));
    var canvas = document.createElement("canvas");
    canvas.width = canvas.height = k * scale;
    var context = canvas.getContext("2d"), peak = 0;
    kernel.forEach(function (row) { row.forEach(function (v) { peak = Math.max(peak, Math.abs(v)); }); });
    kernel.forEach(function (row, y) {
      row.forEach(function (v, x) {
        var t = peak ? Math.min(1, Math.abs(v) / peak) : 0, c = Math.round(255 * (1 - t));
        context.fillStyle = v >= 0 ? "rgb(255," + c + "," + c + ")" : "rgb(" + c + "," + c + ",255)";
        context.fillRect(x * scale, y * scale, scale, scale);
      });
    });
    canvas.setAttribute("aria-label", k + "×" + k + " kernel");
    return canvas;
  }

  function line(text, className) {
    var element = document.createElement("div");
    element.textContent = text;
    if (className) element.className = className;
    return element;
  }

  function show(cell) {
    var value = strengths ? strengths[cell.target * colsCount + cell.source] : null;
    tip.replaceChildren(
      line(data.source + ":" + cell.source + " → " + data.target + ":" + cell.target, "pair"),
      line(value === null ? "strength: loading…" : value === false ? "strength: unavailable"
        : "strength " + value.toFixed(4), value > 0 ? "pos" : value < 0 ? "neg" : "")
    );
    var stored = kernelRows[cell.target];
    if (stored === undefined) {
      kernelRows[cell.target] = null;
      fetch(fill(data.kernels, cell.target)).then(function (response) {
        return response.ok ? response.json() : { sources: [], kernels: [] };
      }).then(function (row) {
        kernelRows[cell.target] = row;
        if (current && current.target === cell.target) show(current);
      }).catch(function () { kernelRows[cell.target] = { sources: [], kernels: [] }; });
    } else if (stored) {
      var rank = stored.sources.indexOf(cell.source);
      if (rank >= 0) {
        tip.appendChild(drawKernel(stored.kernels[rank]));
      } else {
        tip.appendChild(line("Kernel not stored: only the " + stored.sources.length +
          " strongest inputs of each unit are kept.", "note"));
      }
    }
    tip.appendChild(line("click: open " + data.target + ":" + cell.target, "note"));
    var area = figure.getBoundingClientRect();
    tip.style.left = (cell.clientX - area.left + figure.scrollLeft + 14) + "px";
    tip.style.top = (cell.clientY - area.top + 14) + "px";
    tip.hidden = false;
    var unit = cells.getBBox();
    var cellW = unit.width / colsCount, cellH = unit.height / rowsCount;
    hoverRow.setAttribute("y", String(cell.y * cellH));
    hoverCol.setAttribute("x", String(cell.x * cellW));
    hoverRow.setAttribute("visibility", "visible");
    hoverCol.setAttribute("visibility", "visible");
  }

  cells.addEventListener("mousemove", function (event) {
    var cell = cellAt(event);
    if (!cell) return;
    if (current && current.x === cell.x && current.y === cell.y) {
      current = cell;
      return;
    }
    current = cell;
    show(cell);
  });
  cells.addEventListener("mouseleave", function () {
    current = null;
    tip.hidden = true;
    hoverRow.setAttribute("visibility", "hidden");
    hoverCol.setAttribute("visibility", "hidden");
  });
  cells.addEventListener("click", function (event) {
    var cell = cellAt(event);
    if (cell) window.location.href = fill(data.target_url, cell.target);
  });
})();
