// The poolscope dashboard. Every value from the server is untrusted text:
// it reaches the page through textContent and numeric SVG attributes only,
// never parsed as markup and never put in an attribute that runs code.
(function () {
  'use strict';

  var byId = function (id) { return document.getElementById(id); };
  var SVG = 'http://www.w3.org/2000/svg';

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function svg(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    return e;
  }

  function num(v) { return typeof v === 'number' && isFinite(v); }

  function seconds(v) {
    if (!num(v)) return '–';
    if (v < 0.001) return (v * 1e6).toFixed(0) + ' µs';
    if (v < 1) return (v * 1e3).toFixed(v < 0.01 ? 2 : 1) + ' ms';
    return v.toFixed(2) + ' s';
  }

  function bytes(v) {
    if (!num(v)) return 'n/a';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return v.toFixed(i === 0 ? 0 : 1) + ' ' + units[i];
  }

  function duration(v) {
    if (!num(v)) return '–';
    var s = Math.floor(v);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600);
    var m = Math.floor(s % 3600 / 60), r = s % 60;
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    if (m) return m + 'm ' + r + 's';
    return r + 's';
  }

  function rate(v) { return num(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + '/s' : '–'; }
  function percent(v) { return num(v) ? (v * 100).toFixed(v < 0.1 ? 2 : 1) + '%' : '–'; }
  function count(v) { return num(v) ? String(v) : '–'; }
  function clock(ms) { return num(ms) ? new Date(ms).toLocaleTimeString() : '–'; }

  // ---- connection ---------------------------------------------------------

  var source = null;
  var lastSnapshot = 0;
  var connState = 'connecting';

  function setConn(state, text) {
    connState = state;
    var c = byId('conn');
    c.dataset.state = state;
    c.textContent = text;
  }

  function eventsUrl() {
    // Relative to the page, so the dashboard also works behind a proxy that
    // mounts it under a prefix.
    var path = window.location.pathname.replace(/\/+$/, '');
    return path + '/events';
  }

  function connect() {
    if (source) source.close();
    setConn('connecting', 'connecting…');
    source = new EventSource(eventsUrl());
    source.addEventListener('snapshot', function (event) {
      var snapshot;
      try { snapshot = JSON.parse(event.data); } catch (e) { return; }
      lastSnapshot = Date.now();
      if (connState !== 'live') setConn('live', 'live');
      render(snapshot);
    });
    source.onerror = function () {
      setConn('disconnected', 'disconnected: reconnecting…');
      // The browser retries a dropped stream by itself; a refused one
      // (an error status) is closed for good, so start again.
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, 1000);
      }
    };
  }

  // A server that stops sending without closing the stream is just as gone.
  setInterval(function () {
    if (connState === 'live' && Date.now() - lastSnapshot > 3000) {
      setConn('stale', 'no update for ' + Math.round((Date.now() - lastSnapshot) / 1000) + ' s: reconnecting…');
      connect();
    }
  }, 1000);

  // ---- rendering ----------------------------------------------------------

  var instance = null;

  function render(s) {
    // A restarted server numbers its errors from 1 again: forget the rows
    // of the previous one rather than mistake its new errors for old ones.
    if (s.instance !== instance) {
      instance = s.instance;
      errorRows.forEach(function (row) { row.remove(); });
      errorRows.clear();
    }
    renderHealth(s.health || {});
    byId('uptime').textContent = duration(s.uptime_seconds);
    var memory = s.memory || {};
    byId('mem-resident').textContent = bytes(memory.resident_bytes);
    byId('mem-allocated').textContent = bytes(memory.allocated_bytes);
    byId('viewers').textContent = count(s.viewers);
    byId('version').textContent = String(s.version || '');
    byId('updated').textContent = clock(s.at_ms);
    // A delta carries only the errors and chart points that are new since
    // the previous frame; a full snapshot carries everything.
    var delta = s.kind === 'delta';
    renderPools(s.pools || [], delta, s.chart_step_ms || 1000, s.chart_span_ms || 300000);
    renderErrors(s.errors || [], delta, s.errors_min_id || 0);
    renderAlerts((s.alerts || {}).firing || [], (s.alerts || {}).recent || []);
    renderCustom(s.custom_metrics || []);
    // Last, once everything above shows this snapshot: which one the page
    // shows, for scripts driving it (the browser tests wait for a snapshot
    // measured after an event instead of timing the page).
    var shown = document.documentElement.dataset;
    shown.instance = String(s.instance);
    shown.seq = String(s.seq);
    shown.atMs = String(s.at_ms);
    shown.shownMs = String(Date.now());
  }

  function renderHealth(h) {
    var status = h.status || 'unknown';
    var node = byId('health');
    node.dataset.status = status;
    byId('health-text').textContent = status;
    var list = byId('health-reasons');
    list.replaceChildren();
    (h.reasons || []).forEach(function (reason) { list.appendChild(el('li', null, reason)); });
  }

  var STATS = [
    ['available', 'available', function (p) { return p.workers ? count(p.workers.available) : '–'; }],
    ['busy', 'busy', function (p) { return p.workers ? count(p.workers.busy) : '–'; }],
    ['starting', 'starting', function (p) { return p.workers ? count(p.workers.starting) : '–'; }],
    ['crashed', 'crashed', function (p) { return p.workers ? count(p.workers.crashed) : '–'; }],
    ['queue', 'queue', function (p) { return count(p.queue_depth); }],
    ['in_flight', 'in flight', function (p) { return count(p.in_flight); }],
    ['requests', 'requests', function (p) { return count(p.requests_total); }],
    ['rate', 'req/s (5 s)', function (p) { return rate(p.rate_now); }],
    ['error_rate', 'error rate', function (p) { return percent(p.error_rate); }],
    ['p50', 'p50', function (p) { return seconds((p.latency_seconds || {}).p50); }],
    ['p99', 'p99', function (p) { return seconds((p.latency_seconds || {}).p99); }],
    ['utilization', 'utilization', function (p) { return percent(p.utilization); }],
    ['queue_wait_p99', 'queue wait p99', function (p) { return seconds((p.queue_wait_seconds || {}).p99); }],
    ['saturations', 'saturated', function (p) { return count(p.saturations_total); }],
    ['crashes', 'crashes', function (p) { return count(p.crashes_total); }],
    ['sessions', 'sessions', function (p) { return p.sessions ? count(p.sessions.active) : '–'; }],
    ['workers_rss', 'workers RSS', function (p) { return num(p.workers_resident_bytes) ? bytes(p.workers_resident_bytes) : '–'; }]
  ];

  var cards = new Map();

  function card(name) {
    var existing = cards.get(name);
    if (existing) return existing;
    var root = el('article', 'pool');
    root.dataset.pool = name;
    var title = el('h2');
    title.appendChild(el('span', 'name', name));
    var size = el('span', 'size');
    title.appendChild(size);
    root.appendChild(title);
    var stats = el('dl', 'stats');
    var values = {};
    STATS.forEach(function (stat) {
      var cell = el('div');
      cell.dataset.k = stat[0];
      cell.appendChild(el('dt', null, stat[1]));
      var dd = el('dd', null, '–');
      cell.appendChild(dd);
      stats.appendChild(cell);
      values[stat[0]] = dd;
    });
    root.appendChild(stats);
    var workers = el('div', 'workers');
    root.appendChild(workers);
    var legend = el('div', 'legend');
    legend.appendChild(el('span', 'rate', 'requests/s'));
    legend.appendChild(el('span', 'p99', 'p99 latency'));
    var span = el('span', 'span');
    legend.appendChild(span);
    root.appendChild(legend);
    var chart = svg('svg', { 'class': 'chart', viewBox: '0 0 600 120', preserveAspectRatio: 'none' });
    root.appendChild(chart);
    byId('pools').appendChild(root);
    var entry = { root: root, size: size, values: values, workers: workers, chart: chart, span: span, series: [] };
    cards.set(name, entry);
    return entry;
  }

  function renderPools(pools, delta, stepMs, spanMs) {
    var seen = new Set();
    pools.forEach(function (p) {
      var name = String(p.pool);
      seen.add(name);
      var c = card(name);
      c.size.textContent = num(p.size) ? 'size ' + p.size : '';
      STATS.forEach(function (stat) {
        var dd = c.values[stat[0]];
        dd.textContent = stat[2](p);
      });
      var crashed = p.workers ? p.workers.crashed : 0;
      c.values.crashed.classList.toggle('nonzero', crashed > 0);
      c.values.error_rate.classList.toggle('nonzero', num(p.error_rate) && p.error_rate > 0);
      renderWorkers(c.workers, p.worker_list || []);
      var points = p.series || [];
      if (delta) {
        c.series = c.series.concat(points);
        var newest = c.series.length ? c.series[c.series.length - 1][0] : 0;
        c.series = c.series.filter(function (pt) { return pt[0] >= newest - spanMs; });
      } else {
        c.series = points;
      }
      renderChart(c, c.series, stepMs);
    });
    cards.forEach(function (c, name) {
      if (!seen.has(name)) { c.root.remove(); cards.delete(name); }
    });
    byId('no-pools').hidden = pools.length > 0;
  }

  function renderWorkers(node, workers) {
    node.replaceChildren();
    workers.forEach(function (w) {
      var cell = el('div', 'worker');
      cell.dataset.state = String(w.state);
      cell.title = 'worker ' + w.id + ': ' + w.state + ', up ' + duration(w.uptime_seconds);
      cell.appendChild(el('span', 'id', w.id));
      cell.appendChild(el('span', 'up', w.state === 'crashed' ? 'crashed' : duration(w.uptime_seconds)));
      node.appendChild(cell);
    });
  }

  function renderChart(c, series, stepMs) {
    var W = 600, H = 120, PAD = 14;
    var chart = c.chart;
    chart.replaceChildren();
    if (series.length < 2) {
      c.span.textContent = 'chart after two seconds of data';
      return;
    }
    var t0 = series[0][0], t1 = series[series.length - 1][0];
    var maxRate = 0, maxP99 = 0;
    series.forEach(function (pt) {
      if (num(pt[1]) && pt[1] > maxRate) maxRate = pt[1];
      if (num(pt[2]) && pt[2] > maxP99) maxP99 = pt[2];
    });
    maxRate = maxRate || 1;
    maxP99 = maxP99 || 0.001;
    var x = function (t) { return ((t - t0) / Math.max(t1 - t0, 1)) * W; };
    var y = function (v, max) { return H - PAD - (v / max) * (H - 2 * PAD); };
    chart.appendChild(svg('line', { 'class': 'grid', x1: 0, y1: H - PAD, x2: W, y2: H - PAD }));
    chart.appendChild(svg('line', { 'class': 'grid', x1: 0, y1: PAD, x2: W, y2: PAD }));
    var rateD = '', p99D = '', previous = null;
    var lonely = [];
    series.forEach(function (pt, i) {
      if (num(pt[1])) rateD += (rateD ? 'L' : 'M') + x(pt[0]).toFixed(1) + ' ' + y(pt[1], maxRate).toFixed(1);
      if (!num(pt[2])) { previous = null; return; }
      // A second without requests has no p99: the line breaks there and
      // starts again at the next point that has one.
      var joined = previous !== null && pt[0] - previous <= 2 * stepMs;
      p99D += (joined ? 'L' : 'M') + x(pt[0]).toFixed(1) + ' ' + y(pt[2], maxP99).toFixed(1);
      var next = series[i + 1];
      var joinsNext = next && num(next[2]) && next[0] - pt[0] <= 2 * stepMs;
      // A point with neither neighbour draws no line: mark it with a dot.
      if (!joined && !joinsNext) lonely.push(pt);
      previous = pt[0];
    });
    chart.appendChild(svg('path', { 'class': 'rate', d: rateD || 'M0 0' }));
    chart.appendChild(svg('path', { 'class': 'p99', d: p99D || 'M0 0' }));
    lonely.forEach(function (pt) {
      chart.appendChild(svg('circle', { 'class': 'p99-dot', cx: x(pt[0]).toFixed(1), cy: y(pt[2], maxP99).toFixed(1), r: 2 }));
    });
    var top = svg('text', { x: 4, y: PAD - 3 });
    top.textContent = 'max ' + rate(maxRate);
    chart.appendChild(top);
    var right = svg('text', { x: W - 4, y: PAD - 3, 'text-anchor': 'end' });
    right.textContent = 'max p99 ' + seconds(maxP99);
    chart.appendChild(right);
    c.span.textContent = 'last ' + duration((t1 - t0) / 1000);
  }

  var errorRows = new Map();

  function details(e) {
    var parts = [];
    if (e.python) {
      parts.push('Python ' + e.python.exception_type + ': ' + e.python.message);
      if (e.python.traceback) parts.push(e.python.traceback);
    }
    if (e.grpc) {
      parts.push('gRPC status ' + e.grpc.code_name + ' (' + e.grpc.code + '): ' + e.grpc.message +
        (e.grpc.details ? '\ndetails: ' + e.grpc.details : ''));
    }
    if (e.crash) {
      var c = e.crash;
      parts.push('worker crash: ' +
        (c.signal ? 'killed by ' + c.signal : num(c.exit_code) ? 'exit code ' + c.exit_code : 'channel lost') +
        (num(c.uptime_seconds) ? ', up ' + duration(c.uptime_seconds) : '') +
        (c.last_command ? ', last command ' + c.last_command : ''));
      if (c.stderr_tail) parts.push('stderr (tail):\n' + c.stderr_tail);
    }
    if (e.chain && e.chain.length) parts.push('caused by:\n  ' + e.chain.join('\n  '));
    if (e.location) parts.push('at ' + e.location);
    if (e.type_name) parts.push('type ' + e.type_name);
    if (e.worker) parts.push('worker ' + e.worker);
    parts.push('event ' + e.event);
    return parts.join('\n\n');
  }

  function errorRow(e) {
    var li = el('li', 'error');
    li.dataset.id = String(e.id);
    var meta = el('div', 'meta');
    meta.appendChild(el('span', 'time', clock(e.at_ms)));
    var kind = el('span', 'kind', e.kind);
    kind.dataset.kind = String(e.kind);
    meta.appendChild(kind);
    meta.appendChild(el('span', 'pool', e.pool));
    if (e.command) meta.appendChild(el('span', 'command', e.command));
    if (e.worker) meta.appendChild(el('span', 'worker-id', 'worker ' + e.worker));
    meta.appendChild(el('span', 'cid', e.correlation_id || 'no correlation id'));
    li.appendChild(meta);
    li.appendChild(el('div', 'message', e.message));
    var more = el('details');
    more.appendChild(el('summary', null, e.python ? 'traceback' : e.crash ? 'crash context' : e.grpc ? 'gRPC status' : 'details'));
    more.appendChild(el('pre', 'context', details(e)));
    li.appendChild(more);
    return li;
  }

  function renderErrors(errors, delta, minId) {
    var list = byId('errors');
    if (delta) {
      // New ones, newest first, go on top; rows the server no longer keeps go.
      errors.slice().reverse().forEach(function (e) {
        var id = String(e.id);
        if (errorRows.has(id)) return;
        var row = errorRow(e);
        errorRows.set(id, row);
        list.insertBefore(row, list.firstChild);
      });
      errorRows.forEach(function (row, id) {
        if (Number(id) < minId) { row.remove(); errorRows.delete(id); }
      });
      byId('no-errors').hidden = errorRows.size > 0;
      return;
    }
    var keep = new Set();
    // Newest first: insert each new row before the first older one, keeping
    // rows already shown (and whether they are expanded).
    var previous = null;
    errors.forEach(function (e) {
      var id = String(e.id);
      keep.add(id);
      var row = errorRows.get(id);
      if (!row) {
        row = errorRow(e);
        errorRows.set(id, row);
        list.insertBefore(row, previous ? previous.nextSibling : list.firstChild);
      }
      previous = row;
    });
    errorRows.forEach(function (row, id) {
      if (!keep.has(id)) { row.remove(); errorRows.delete(id); }
    });
    byId('no-errors').hidden = errors.length > 0;
  }

  function alertRow(a) {
    var li = el('li');
    li.dataset.state = String(a.state);
    var meta = el('div', 'meta');
    meta.appendChild(el('span', 'time', clock(a.at_ms)));
    meta.appendChild(el('span', 'state', a.state));
    if (a.pool) meta.appendChild(el('span', 'pool', a.pool));
    li.appendChild(meta);
    li.appendChild(el('div', 'message', a.rule + ': ' + a.value + ' (threshold ' + a.threshold + ')'));
    return li;
  }

  function renderAlerts(firing, recent) {
    var f = byId('alerts-firing');
    f.replaceChildren();
    firing.forEach(function (a) {
      f.appendChild(el('li', null, 'firing: ' + a.rule + (a.pool ? ' on ' + a.pool : '') + ' = ' + a.value));
    });
    var list = byId('alerts');
    list.replaceChildren();
    recent.forEach(function (a) { list.appendChild(alertRow(a)); });
    byId('no-alerts').hidden = recent.length > 0;
  }

  function renderCustom(series) {
    byId('custom-section').hidden = series.length === 0;
    var table = byId('custom');
    table.replaceChildren();
    series.forEach(function (pair) {
      var row = el('tr');
      row.appendChild(el('td', 'series', pair[0]));
      row.appendChild(el('td', 'value', num(pair[1]) ? String(pair[1]) : '–'));
      table.appendChild(row);
    });
  }

  connect();
})();
