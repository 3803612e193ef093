// Draws the dashboard from the embedded report (schema mailflow.report/v1). Every string from the
// report may come from a log line: it only ever reaches the page through textContent, never as
// markup. Figures are recomputed from the daily counters for the days the reader picks.
(() => {
  'use strict';
  const started = performance.now();
  const report = JSON.parse(document.getElementById('mailflow-report').textContent);

  const TLS = [
    ['none', 'No TLS'], ['ssl3', 'SSLv3'], ['tls1_0', 'TLS 1.0'], ['tls1_1', 'TLS 1.1'],
    ['tls1_2', 'TLS 1.2'], ['tls1_3', 'TLS 1.3'], ['unknown', 'Unknown'],
  ].map(([key, label]) => ({ key, label, color: `var(--${key})` }));
  const TRUST = [
    ['anonymous', 'Anonymous'], ['untrusted', 'Untrusted'], ['trusted', 'Trusted'],
    ['verified', 'Verified'], ['unknown', 'Unknown or no TLS'],
  ].map(([key, label]) => ({ key, label, color: `var(--${key})` }));
  const STATUS = [['delivered', 'Delivered'], ['deferred', 'Deferred'], ['failed', 'Failed'], ['rejected', 'Rejected']]
    .map(([key, label]) => ({ key, label, color: `var(--${key})` }));
  const DIRECTIONS = [['inbound', 'Inbound'], ['outbound', 'Outbound']]
    .map(([key, label]) => ({ key, label, color: `var(--${key})` }));
  const PRESETS = [7, 14, 30];

  const days = report.totals.inbound.daily.map((d) => d.date);
  // A connector's id is its direction and name, so a saved link opens it in tomorrow's page too.
  const connectors = report.connectors.map((c) => ({ ...c, id: `${c.direction}:${c.name}` }));
  const defaultDays = Math.max(1, Number(document.body.dataset.defaultDays) || 7);
  const DEFAULTS = {
    view: 'overview', from: Math.max(0, days.length - defaultDays), to: days.length - 1,
    connector: 'all', mode: 'flow', by: 'direction',
  };
  const state = { ...DEFAULTS };

  // ---- numbers and dates -------------------------------------------------------------------
  const numberFormat = new Intl.NumberFormat('en-US');
  const fmt = (n) => numberFormat.format(n);
  const pct = (part, whole) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '–');
  const shareLabel = (share) => `${Number((share * 100).toFixed(1))}%`;
  const bytes = (n) => {
    const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
  };
  const utc = (date) => new Date(`${date}T00:00:00Z`);
  // Dates carry their year when the report spans more than one.
  const withYear = days[0].slice(0, 4) !== days[days.length - 1].slice(0, 4);
  const dateLabel = (date, options) => utc(date).toLocaleDateString('en-US', { ...options, timeZone: 'UTC' });
  const dayShort = (date) => dateLabel(date, { month: 'short', day: 'numeric', year: withYear ? 'numeric' : undefined });
  const dayLong = (date) => dateLabel(date, { weekday: 'short', month: 'short', day: 'numeric', year: withYear ? 'numeric' : undefined });
  const dayAxis = (date) => dateLabel(date, withYear ? { month: 'short', year: '2-digit', day: 'numeric' } : { month: 'short', day: 'numeric' });
  const span = () => `${dayShort(days[state.from])} – ${dayShort(days[state.to])}`;

  // ---- sums over the picked days -------------------------------------------------------------
  const zero = () => ({
    messages: 0, recipients: 0, bytes: 0,
    tls: Object.fromEntries(TLS.map((s) => [s.key, 0])),
    trust: Object.fromEntries(TRUST.map((s) => [s.key, 0])),
    status: Object.fromEntries(STATUS.map((s) => [s.key, 0])),
  });
  const add = (acc, c) => {
    acc.messages += c.messages; acc.recipients += c.recipients; acc.bytes += c.bytes;
    for (const group of ['tls', 'trust', 'status']) for (const k in acc[group]) acc[group][k] += c[group][k];
    return acc;
  };
  const picked = (traffic) => traffic.daily.slice(state.from, state.to + 1);
  const sum = (traffic) => picked(traffic).reduce(add, zero());
  const isFullRange = () => state.from === 0 && state.to === days.length - 1;
  const protectedShare = (c) => pct(c.messages - c.tls.none, c.messages);

  // ---- DOM helpers: text goes in as text, never as markup -----------------------------------
  const append = (el, children) => {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  };
  const h = (tag, attrs = {}, ...children) => {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'color') el.style.background = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    return append(el, children);
  };
  const SVG = 'http://www.w3.org/2000/svg';
  const s = (tag, attrs = {}, ...children) => {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'fill') el.style.fill = v;
      else el.setAttribute(k, v);
    }
    return append(el, children);
  };
  const card = (...children) => h('div', { class: 'card' }, ...children);
  // A table may scroll sideways on a phone: keyboard users reach it as a named region.
  const tableWrap = (table) => {
    const caption = table.querySelector('caption');
    return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption ? caption.textContent : 'Table' }, table);
  };
  const swatch = (color) => h('span', { class: 'swatch', color, 'aria-hidden': 'true' });
  const legend = (series) => h('ul', { class: 'legend' }, series.map((x) => h('li', {}, swatch(x.color), x.label)));
  // A legend that also says each part's share: the overview's reading of a mix bar.
  const shares = (series, values, total) => h('ul', { class: 'legend' },
    series.filter((x) => values[x.key]).map((x) => h('li', {}, swatch(x.color), `${x.label} `, h('strong', {}, pct(values[x.key], total)))));
  const seg = (label, options, current, onpick) => h('div', { class: 'seg', role: 'group', 'aria-label': label },
    options.map(([value, text, disabled, title]) => h('button', {
      type: 'button', 'aria-pressed': String(value === current), 'data-value': String(value), 'data-focus': `${label}:${value}`, disabled, title,
      onclick: () => onpick(value),
    }, text)));

  // ---- insights --------------------------------------------------------------------------------
  const INSIGHT_TITLES = {
    no_tls_over: (i) => `No TLS is over ${shareLabel(i.threshold)}`,
    tls1_0_above: (i) => `TLS 1.0 is above ${shareLabel(i.threshold)}`,
    legacy_tls: (i) => `Legacy TLS is above ${shareLabel(i.threshold)}`,
    tls_unknown: (i) => `TLS version unknown for over ${shareLabel(i.threshold)}`,
    failures_above: (i) => `Failures are above ${shareLabel(i.threshold)}`,
    volume_change: (i) => `Volume ${i.value < 0 ? 'fell' : 'rose'} ${shareLabel(Math.abs(i.value))}`,
    new_connector: () => 'New connector',
    silent_connector: (i) => `Silent for ${fmt(i.value)} days`,
  };
  const insightTitle = (i) => (INSIGHT_TITLES[i.kind] || (() => i.kind))(i);
  const insightValue = (i) => {
    if (i.kind === 'new_connector') return `${fmt(i.value)} messages`;
    if (i.kind === 'silent_connector') return `${fmt(i.value)} days without traffic (threshold ${fmt(i.threshold)})`;
    const sign = i.kind === 'volume_change' && i.value > 0 ? '+' : '';
    return `${sign}${(i.value * 100).toFixed(1)}% (threshold ${shareLabel(i.threshold)})`;
  };
  const insightsOf = (c) => report.insights.filter((i) => i.connector === c.name && i.direction === c.direction);
  const badges = (list) => list.map((i) => h('span', { class: `badge ${i.severity}`, title: i.message }, insightTitle(i)));

  // ---- charts ------------------------------------------------------------------------------------
  const chartWidth = (columns = 1) => {
    const main = document.querySelector('main');
    const inner = Math.max(280, (main ? main.clientWidth : 1000) - 48);
    const width = columns > 1 && inner >= 2 * 420 + 16 ? (inner - 16) / columns : inner;
    return Math.round(width - 38);
  };
  const niceMax = (max) => {
    if (max <= 4) return 4;
    const step = 10 ** Math.floor(Math.log10(max / 4));
    const nice = [1, 2, 2.5, 5, 10].map((m) => m * step).find((m) => m * 4 >= max);
    return nice * 4;
  };

  // Stacked columns, one per day. `parts(i)` gives a day's values by series key.
  const columns = (label, dates, series, parts, { percent = false, width = chartWidth() } = {}) => {
    const H = 210; const left = percent ? 40 : 52; const bottom = 24; const top = 8;
    const plotW = width - left - 8; const plotH = H - top - bottom;
    const totals = dates.map((_, i) => series.reduce((t, x) => t + (parts(i)[x.key] || 0), 0));
    const max = percent ? 100 : niceMax(Math.max(0, ...totals));
    const svg = s('svg', { class: 'chart', viewBox: `0 0 ${width} ${H}`, role: 'img', 'aria-label': `${label} (the table lists the figures)` });
    for (let t = 0; t <= 4; t += 1) {
      const y = top + plotH - (plotH * t) / 4;
      const value = (max * t) / 4;
      svg.append(s('line', { class: 'grid-line', x1: left, x2: width - 8, y1: y, y2: y }));
      svg.append(s('text', { x: left - 6, y: y + 4, 'text-anchor': 'end' }, percent ? `${value}%` : fmt(value)));
    }
    const slot = plotW / Math.max(1, dates.length);
    const barW = Math.max(1, Math.min(48, slot * 0.72));
    const every = Math.ceil(dates.length / Math.max(1, Math.floor(plotW / (withYear ? 72 : 52))));
    dates.forEach((date, i) => {
      const x = left + slot * i + (slot - barW) / 2;
      let y = top + plotH;
      const total = totals[i];
      for (const kind of series) {
        const v = parts(i)[kind.key] || 0;
        if (!v) continue;
        const hgt = percent ? (plotH * v) / total : (plotH * v) / max;
        y -= hgt;
        svg.append(s('rect', { x, y, width: barW, height: Math.max(0.5, hgt), fill: kind.color },
          s('title', {}, `${dayLong(date)} · ${kind.label}: ${fmt(v)} (${pct(v, total)})`)));
      }
      if (i % every === 0) {
        svg.append(s('text', { x: left + slot * i + slot / 2, y: H - 6, 'text-anchor': 'middle' }, dayAxis(date)));
      }
    });
    return svg;
  };

  // One 100 % bar: the mix of `values` over `series`.
  // Drawn in a 100-wide box stretched to the CSS size: `.mix` fills a card, `.mix.small` a cell.
  const mixBar = (label, series, values, { small = true } = {}) => {
    const total = series.reduce((t, x) => t + (values[x.key] || 0), 0);
    const width = 100; const height = 10;
    const svg = s('svg', { class: small ? 'mix small' : 'mix', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': label });
    let x = 0;
    for (const kind of series) {
      const v = values[kind.key] || 0;
      if (!v || !total) continue;
      const w = (width * v) / total;
      svg.append(s('rect', { x, y: 0, width: w, height, fill: kind.color }, s('title', {}, `${kind.label}: ${fmt(v)} (${pct(v, total)})`)));
      x += w;
    }
    if (!total) svg.append(s('rect', { x: 0, y: 0, width, height, fill: 'var(--line)' }, s('title', {}, 'No messages')));
    return svg;
  };

  // Messages and share per series, with a total row: the table under a mix.
  const shareTable = (caption, series, values, total, key) => h('table', { 'data-table': key },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Kind'), h('th', { scope: 'col' }, 'Messages'), h('th', { scope: 'col' }, 'Share'))),
    h('tbody', {}, series.map((x) => h('tr', { 'data-key': x.key },
      h('th', { scope: 'row', class: 'text' }, swatch(x.color), x.label),
      h('td', { 'data-field': 'messages' }, fmt(values[x.key])),
      h('td', { 'data-field': 'share' }, pct(values[x.key], total))))),
    h('tfoot', {}, h('tr', {}, h('td', {}, 'Total'), h('td', { 'data-field': 'messages' }, fmt(total)), h('td', {}, total ? '100.0%' : '–'))));

  // Per-day figures behind a column chart: `show` is 'count', 'share' (of the day's messages) or
  // 'both'; `group` names the counters (tls, trust, status, direction) the series are read from.
  const dayTable = (caption, series, traffic, group, { show = 'count', key, tlsColumn = false } = {}) => {
    const rows = picked(traffic);
    const cell = (v, total) => ({ count: fmt(v), share: pct(v, total), both: `${fmt(v)} (${pct(v, total)})` }[show]);
    const totals = rows.reduce(add, zero());
    const seriesTotal = (k) => rows.reduce((t, d) => t + (d[group][k] || 0), 0);
    return h('table', { 'data-table': key },
      h('caption', {}, `${caption}, ${span()}`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Date'), series.map((x) => h('th', { scope: 'col' }, x.label)),
        h('th', { scope: 'col' }, 'Messages'), tlsColumn ? h('th', { scope: 'col' }, 'Protected by TLS') : null)),
      h('tbody', {}, rows.map((d) => h('tr', { 'data-date': d.date },
        h('th', { scope: 'row', class: 'text' }, dayLong(d.date)),
        series.map((x) => h('td', { 'data-key': x.key }, cell(d[group][x.key] || 0, d.messages))),
        h('td', { 'data-field': 'messages' }, fmt(d.messages)),
        tlsColumn ? h('td', {}, protectedShare(d)) : null))),
      h('tfoot', {}, h('tr', {}, h('td', {}, 'Total'),
        series.map((x) => h('td', { 'data-key': x.key }, cell(seriesTotal(x.key), totals.messages))),
        h('td', { 'data-field': 'messages' }, fmt(totals.messages)),
        tlsColumn ? h('td', {}, protectedShare(totals)) : null)));
  };
  // A table a reader opens on demand; `fold` names it so a redraw keeps it open.
  const folded = (summary, content, fold) => h('details', { 'data-fold': fold, open: openFolds.has(fold) },
    h('summary', {}, summary), tableWrap(content));

  // ---- views ---------------------------------------------------------------------------------------
  const views = {};

  views.overview = () => {
    const inbound = sum(report.totals.inbound);
    const outbound = sum(report.totals.outbound);
    const previous = isFullRange() ? report.totals.previous : null;
    const change = (now, before) => {
      if (!previous) return null;
      if (!before) return h('p', { class: 'note' }, 'No messages in the previous period');
      const v = (now - before) / before;
      return h('p', { class: `note ${v >= 0 ? 'up' : 'down'}` }, `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)}% against the previous ${fmt(days.length)} days (${fmt(before)})`);
    };
    const kpi = (direction, c, before) => card(
      h('div', { class: 'kpi-label' }, direction.label),
      h('div', { class: 'big', 'data-metric': `${direction.key}-messages` }, fmt(c.messages)),
      h('p', { class: 'note' }, `messages · ${fmt(c.recipients)} recipients · ${bytes(c.bytes)}`),
      h('p', {}, h('strong', { 'data-metric': `${direction.key}-protected` }, protectedShare(c)), ' protected by TLS',
        c.tls.unknown ? h('span', { class: 'note' }, ` (${fmt(c.tls.unknown)} with the version not logged)`) : null),
      direction.key === 'outbound' ? h('p', { class: 'note' }, `${pct(c.status.failed + c.status.deferred, c.messages)} failed or deferred`) : null,
      change(c.messages, before && before.messages));
    const bySeverity = (sev) => report.insights.filter((i) => i.severity === sev).length;
    const troubled = report.sources.filter((x) => x.status !== 'ok' || x.skipped > 0).length;
    const mix = (direction, c) => h('div', {},
      h('h3', {}, `${direction.label}: TLS version mix`),
      mixBar(`${direction.label} TLS version mix`, TLS, c.tls, { small: false }),
      shares(TLS, c.tls, c.messages),
      folded('Table', shareTable(`${direction.label} messages by TLS version, ${span()}`, TLS, c.tls, c.messages, `overview-${direction.key}-tls`), `overview-${direction.key}-tls`));
    return [
      h('div', { class: 'grid' },
        kpi(DIRECTIONS[0], inbound, previous && previous.inbound),
        kpi(DIRECTIONS[1], outbound, previous && previous.outbound),
        card(h('div', { class: 'kpi-label' }, 'Insights'),
          h('div', { class: 'big', 'data-metric': 'insights' }, fmt(report.insights.length)),
          h('p', {}, h('span', { class: 'badge warning' }, `${fmt(bySeverity('warning'))} warnings`), h('span', { class: 'badge info' }, `${fmt(bySeverity('info'))} info`)),
          h('button', { class: 'link', type: 'button', onclick: () => go({ view: 'insights' }) }, 'See every insight')),
        card(h('div', { class: 'kpi-label' }, 'Sources'),
          h('div', { class: 'big', 'data-metric': 'sources' }, fmt(report.sources.length)),
          h('p', { class: 'note' }, troubled ? `${fmt(troubled)} with skipped lines or errors` : 'all read without problems'),
          h('button', { class: 'link', type: 'button', onclick: () => go({ view: 'sources' }) }, 'See the sources'))),
      card(h('h2', {}, 'Outbound and inbound mail flow'),
        legend(DIRECTIONS),
        columns(`Messages per day by direction, ${span()}`, days.slice(state.from, state.to + 1), DIRECTIONS,
          (i) => ({ inbound: report.totals.inbound.daily[state.from + i].messages, outbound: report.totals.outbound.daily[state.from + i].messages })),
        folded('Table', dayTable('Messages per day by direction', DIRECTIONS, allTraffic(), 'direction', { key: 'overview-daily', tlsColumn: true }), 'overview-daily'),
        h('h3', {}, 'Message protected in transit (by TLS)'),
        legend(TLS),
        mix(DIRECTIONS[0], inbound), mix(DIRECTIONS[1], outbound)),
    ];
  };

  views.tls = () => {
    const side = (direction) => {
      const traffic = report.totals[direction.key];
      const c = sum(traffic);
      const rows = picked(traffic);
      return card(
        h('h2', {}, direction.label),
        h('p', {}, h('span', { class: 'big', 'data-metric': `tls-${direction.key}-protected` }, protectedShare(c)), ' of ', fmt(c.messages), ' messages protected by TLS'),
        legend(TLS),
        columns(`${direction.label} TLS versions per day (100%)`, rows.map((d) => d.date), TLS, (i) => rows[i].tls, { percent: true, width: chartWidth(2) }),
        folded('Per day', dayTable(`${direction.label} messages per day by TLS version`, TLS, traffic, 'tls', { show: 'both', key: `tls-${direction.key}-daily` }), `tls-${direction.key}-daily`),
        tableWrap(shareTable(`${direction.label} messages by TLS version, ${span()}`, TLS, c.tls, c.messages, `tls-${direction.key}`)),
        h('h3', {}, 'Certificate trust'),
        mixBar(`${direction.label} certificate trust`, TRUST, c.trust, { small: false }),
        legend(TRUST),
        tableWrap(shareTable(`${direction.label} messages by certificate check, ${span()}`, TRUST, c.trust, c.messages, `trust-${direction.key}`)));
    };
    return [
      h('p', { class: 'note' }, `Share of messages per TLS version, ${span()}. "Unknown" means the source did not log the version; "Unknown or no TLS" under trust includes plaintext.`),
      h('div', { class: 'grid two' }, side(DIRECTIONS[0]), side(DIRECTIONS[1])),
    ];
  };

  // "All mail flow": both directions, every connector and "No connector".
  const allTraffic = () => ({
    name: 'All mail flow',
    daily: days.map((date, i) => {
      const d = add(add(zero(), report.totals.inbound.daily[i]), report.totals.outbound.daily[i]);
      d.date = date;
      d.direction = { inbound: report.totals.inbound.daily[i].messages, outbound: report.totals.outbound.daily[i].messages };
      return d;
    }),
  });

  views.connectors = () => {
    const selected = connectors.find((c) => c.id === state.connector);
    const traffic = selected
      ? { ...selected, daily: selected.daily.map((d) => ({ ...d, direction: { [selected.direction]: d.messages } })) }
      : allTraffic();
    const picker = h('select', { id: 'connector', onchange: (e) => go({ connector: e.target.value }) },
      h('option', { value: 'all' }, 'All mail flow'),
      DIRECTIONS.map((d) => h('optgroup', { label: d.label },
        connectors.filter((c) => c.direction === d.key).map((c) => h('option', { value: c.id }, c.name)))));
    picker.value = state.connector;
    const toolbar = h('div', { class: 'toolbar' },
      h('label', {}, 'Connector', picker),
      seg('View', [['flow', 'Mail flow'], ['tls', 'TLS usage']], state.mode, (mode) => go({ mode })),
      state.mode === 'flow' ? seg('Break down by', [['direction', 'By direction'], ['status', 'By status']], state.by, (by) => go({ by })) : null);
    const title = h('h2', {}, selected ? `${selected.name} (${selected.direction})` : 'All mail flow', ' ', selected ? badges(insightsOf(selected)) : null);
    const rows = picked(traffic);
    let body;
    if (state.mode === 'flow') {
      const series = state.by === 'status' ? STATUS : DIRECTIONS;
      const group = state.by === 'status' ? 'status' : 'direction';
      body = [
        legend(series),
        columns(`Messages per day ${state.by === 'status' ? 'by status' : 'by direction'}, ${traffic.name}`, rows.map((d) => d.date), series, (i) => rows[i][group]),
        tableWrap(dayTable(`Messages per day, ${traffic.name}`, series, traffic, group, { key: 'flow', tlsColumn: true })),
      ];
    } else {
      body = [
        legend(TLS),
        columns(`TLS versions per day (100%), ${traffic.name}`, rows.map((d) => d.date), TLS, (i) => rows[i].tls, { percent: true }),
        tableWrap(dayTable(`Messages per TLS version per day, ${traffic.name}`, TLS, traffic, 'tls', { show: 'both', key: 'connector-tls-daily' })),
        selected ? null : [h('h3', {}, 'TLS usage per connector'), tableWrap(tlsUsageTable())],
      ];
    }
    return [toolbar, card(title, body), card(h('h2', {}, 'Connectors'), h('p', { class: 'note' }, `${span()}. Pick a name to see its mail flow and TLS usage.`), tableWrap(connectorTable()))];
  };

  // Opens a connector's report from anywhere, at the top of the report.
  const connectorLink = (c) => h('button', {
    class: 'link', type: 'button', 'data-focus': `link:${c.id}`,
    onclick: () => { go({ view: 'connectors', connector: c.id }); document.getElementById('view-connectors').scrollIntoView(); },
  }, c.name);

  const tlsUsageTable = () => h('table', { 'data-table': 'tls-usage' },
    h('caption', {}, `Share of messages per TLS version and connector, ${span()}`),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Connector'), h('th', { scope: 'col', class: 'text' }, 'Direction'), h('th', { scope: 'col' }, 'Messages'),
      h('th', { scope: 'col', class: 'text' }, 'Mix'), TLS.map((x) => h('th', { scope: 'col' }, x.label)))),
    h('tbody', {}, connectors.map((c) => {
      const t = sum(c);
      return h('tr', { 'data-connector': c.id },
        h('td', { class: 'text' }, connectorLink(c)), h('td', { class: 'text' }, c.direction), h('td', { 'data-field': 'messages' }, fmt(t.messages)),
        h('td', { class: 'text' }, mixBar(`TLS mix of ${c.name}`, TLS, t.tls)),
        TLS.map((x) => h('td', { 'data-key': x.key }, pct(t.tls[x.key], t.messages))));
    })));

  const connectorTable = () => h('table', { 'data-table': 'connectors' },
    h('caption', {}, 'Every connector, busiest first; "No connector" holds traffic no rule matched'),
    h('thead', {}, h('tr', {}, ['Connector', 'Direction', 'Messages', 'Recipients', 'Size', 'Protected by TLS', 'TLS 1.2 or 1.3', 'Failed or deferred', 'Insights']
      .map((label, i) => h('th', { scope: 'col', class: [0, 1, 8].includes(i) ? 'text' : null }, label)))),
    h('tbody', {}, connectors.map((c) => {
      const t = sum(c);
      return h('tr', { 'data-connector': c.id, class: c.id === state.connector ? 'selected' : null },
        h('td', { class: 'text' }, connectorLink(c)),
        h('td', { class: 'text' }, c.direction),
        h('td', { 'data-field': 'messages' }, fmt(t.messages)),
        h('td', {}, fmt(t.recipients)),
        h('td', {}, bytes(t.bytes)),
        h('td', {}, protectedShare(t)),
        h('td', {}, pct(t.tls.tls1_2 + t.tls.tls1_3, t.messages)),
        h('td', {}, c.direction === 'outbound' ? pct(t.status.failed + t.status.deferred, t.messages) : '–'),
        h('td', { class: 'text' }, badges(insightsOf(c))));
    })));

  views.insights = () => {
    const previous = report.totals.previous ? `, compared with the ${fmt(days.length)} days before` : '';
    const note = h('p', { class: 'note' }, `Insights cover the whole report, ${dayShort(days[0])} – ${dayShort(days[days.length - 1])}${previous}; the date filter does not change them.`);
    if (!report.insights.length) return [note, card(h('p', { class: 'empty' }, 'No insights: every connector is within its thresholds.'))];
    return [note, report.insights.map((i) => {
      const c = connectors.find((x) => x.name === i.connector && x.direction === i.direction);
      return h('article', { class: `card insight ${i.severity}`, 'data-kind': i.kind },
        h('h2', {}, h('span', { class: `badge ${i.severity}` }, i.severity), ' ', insightTitle(i)),
        h('p', { class: 'note' }, `${i.direction} · `, c ? connectorLink(c) : i.connector, ` · ${insightValue(i)}`),
        h('p', {}, i.message),
        h('p', { class: 'fix' }, h('strong', {}, 'What to do: '), i.remediation));
    })];
  };

  views.sources = () => {
    const row = (x) => h('tr', { 'data-source': x.name },
      h('td', { class: 'text' }, x.name),
      h('td', { class: 'text' }, x.type),
      h('td', { class: `text status-${x.status}` }, x.status, x.error ? h('div', { class: 'warnings' }, x.error) : null,
        (x.notes || []).map((n) => h('div', { class: 'note' }, n))),
      h('td', { 'data-field': 'events' }, fmt(x.events)),
      h('td', { 'data-field': 'skipped' }, fmt(x.skipped)),
      h('td', {}, fmt(x.out_of_range)),
      h('td', {}, fmt(x.internal)),
      h('td', { class: 'text' }, x.first_event ? x.first_event.slice(0, 10) : '–'),
      h('td', { class: 'text' }, x.warnings.length
        ? h('details', { 'data-fold': `warnings:${x.name}`, open: openFolds.has(`warnings:${x.name}`) },
          h('summary', {}, `${fmt(x.warnings.length)} shown`), h('ul', { class: 'warnings' }, x.warnings.map((w) => h('li', {}, w))))
        : 'none'));
    const table = h('table', { 'data-table': 'sources' },
      h('caption', {}, 'Each source, what it counted in the report range, and what it had to skip'),
      h('thead', {}, h('tr', {}, ['Source', 'Type', 'Status', 'Events', 'Skipped', 'Outside the range', 'Internal', 'Data since', 'Warnings']
        .map((label, i) => h('th', { scope: 'col', class: [0, 1, 2, 7, 8].includes(i) ? 'text' : null }, label)))),
      h('tbody', {}, report.sources.map(row)));
    return [card(h('h2', {}, 'Sources'), tableWrap(table))];
  };

  // ---- date filter: built once and kept, so typing a date is never interrupted by a redraw ----
  const filter = (() => {
    const last = days.length - 1;
    const presets = PRESETS.map((n) => [n, `Last ${n} days`, n > days.length, n > days.length ? `The page holds ${days.length} days` : null]);
    if (!PRESETS.includes(days.length)) presets.push(['all', days.length === 1 ? 'The one day' : `All ${days.length} days`]);
    const quick = seg('Quick ranges', presets, null, (n) => go(n === 'all' ? { from: 0, to: last } : { from: Math.max(0, days.length - n), to: last }));
    // A date is applied once it is complete and in the report; a half-typed one is left alone.
    const dateInput = (id, onpick) => {
      const input = h('input', { type: 'date', id, min: days[0], max: days[last], required: true });
      input.addEventListener('change', () => {
        const i = days.indexOf(input.value);
        if (i >= 0) onpick(i);
      });
      input.addEventListener('blur', () => { if (days.indexOf(input.value) < 0) sync(); });
      return input;
    };
    const from = dateInput('from', (i) => go({ from: i, to: Math.max(i, state.to) }));
    const to = dateInput('to', (i) => go({ to: i, from: Math.min(i, state.from) }));
    document.getElementById('filter').replaceChildren(quick, h('label', { for: 'from' }, 'From'), from, h('label', { for: 'to' }, 'to'), to);
    const sync = () => {
      const current = isFullRange() && !PRESETS.includes(days.length) ? 'all' : state.to === last ? String(state.to - state.from + 1) : null;
      for (const b of quick.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.value === current));
      if (from.value !== days[state.from]) from.value = days[state.from];
      if (to.value !== days[state.to]) to.value = days[state.to];
    };
    return { sync };
  })();

  // ---- state, address bar, rendering ---------------------------------------------------------------
  const VIEWS = ['overview', 'tls', 'connectors', 'insights', 'sources'];
  const readHash = () => {
    const p = new URLSearchParams(location.hash.slice(1));
    const next = {};
    if (VIEWS.includes(p.get('view'))) next.view = p.get('view');
    const from = days.indexOf(p.get('from')); const to = days.indexOf(p.get('to'));
    if (from >= 0 && to >= from) Object.assign(next, { from, to });
    if (p.get('connector') === 'all' || connectors.some((c) => c.id === p.get('connector'))) next.connector = p.get('connector');
    if (['flow', 'tls'].includes(p.get('mode'))) next.mode = p.get('mode');
    if (['direction', 'status'].includes(p.get('by'))) next.by = p.get('by');
    return next;
  };
  const writeHash = () => {
    const p = new URLSearchParams({ view: state.view, from: days[state.from], to: days[state.to], connector: state.connector, mode: state.mode, by: state.by });
    history.replaceState(null, '', `#${p}`);
  };
  const go = (change) => {
    Object.assign(state, change);
    writeHash();
    render();
  };

  // Folded tables stay open, and the focused control keeps focus, across redraws.
  const openFolds = new Set();
  const focusKey = (el) => (el && el !== document.body ? (el.id ? `#${el.id}` : el.dataset.focus) : null);
  const tabs = [...document.querySelectorAll('[role="tab"][data-view]')];
  let printing = false;
  const render = ({ rememberFolds = true } = {}) => {
    const focused = focusKey(document.activeElement);
    if (rememberFolds) {
      for (const d of document.querySelectorAll('details[data-fold]')) if (d.open) openFolds.add(d.dataset.fold); else openFolds.delete(d.dataset.fold);
    }
    filter.sync();
    for (const tab of tabs) {
      const active = tab.dataset.view === state.view;
      tab.setAttribute('aria-selected', String(active));
      tab.tabIndex = active ? 0 : -1;
      if (active && tab.scrollIntoView) tab.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    }
    // Only the view on screen is drawn; printing draws them all, one after another.
    for (const name of VIEWS) {
      const section = document.getElementById(`view-${name}`);
      section.hidden = name !== state.view;
      section.replaceChildren(...(printing || name === state.view ? views[name]().flat() : []));
    }
    document.getElementById('insight-count').textContent = report.insights.length ? fmt(report.insights.length) : '';
    if (focused) {
      const again = focused.startsWith('#') ? document.getElementById(focused.slice(1)) : [...document.querySelectorAll('[data-focus]')].find((el) => el.dataset.focus === focused);
      if (again && again !== document.activeElement) again.focus();
    }
  };

  tabs.forEach((tab) => {
    const name = tab.dataset.view;
    tab.id = `tab-${name}`;
    tab.setAttribute('aria-controls', `view-${name}`);
    document.getElementById(`view-${name}`).setAttribute('aria-labelledby', tab.id);
    tab.addEventListener('click', () => go({ view: name }));
    tab.addEventListener('keydown', (e) => {
      const i = VIEWS.indexOf(state.view);
      const next = { ArrowRight: i + 1, ArrowLeft: i - 1 + VIEWS.length, Home: 0, End: VIEWS.length - 1 }[e.key];
      if (next === undefined) return;
      e.preventDefault();
      go({ view: VIEWS[next % VIEWS.length] });
      document.getElementById(`tab-${state.view}`).focus();
    });
  });
  // Charts are drawn for the width of the page: redraw when that changes, not when only the
  // height does (a phone's toolbar hiding while the reader scrolls).
  let drawnWidth = document.querySelector('main').clientWidth;
  let resizeTimer;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      const width = document.querySelector('main').clientWidth;
      if (width !== drawnWidth) { drawnWidth = width; render(); }
    }, 150);
  });
  window.addEventListener('hashchange', () => { Object.assign(state, DEFAULTS, readHash()); render(); });
  // Printing opens every folded table; afterwards they are as the reader left them.
  const printMode = (on) => {
    if (printing === on) return;
    printing = on;
    render({ rememberFolds: on });
    if (on) document.querySelectorAll('details').forEach((d) => { d.open = true; });
  };
  window.addEventListener('beforeprint', () => printMode(true));
  window.addEventListener('afterprint', () => printMode(false));
  const printQuery = window.matchMedia('print');
  printQuery.addEventListener('change', () => printMode(printQuery.matches));

  Object.assign(state, readHash());
  render();
  document.body.dataset.renderMs = (performance.now() - started).toFixed(1);
  document.body.dataset.ready = 'true';
})();
