// pages.js: one function per page. A page is {title, el, refresh}: `el` is built once (forms keep
// what the user typed), `refresh` polls the JSON API and redraws the data parts when they changed.
import {h, table, api, link, enc, fmtTime, fmtNum, fmtBytes, errorBox, section} from './dom.js';

/** A container that redraws with render(data) only when data differs from the last draw. */
function liveBox(render, attrs) {
  const el = h('div', attrs);
  let last = null;
  el.update = (data) => {
    const key = JSON.stringify(data);
    if (key === last) return;
    last = key;
    el.replaceChildren(render(data));
  };
  return el;
}

/** A page whose data comes from one or more API paths, each drawn into its own box. */
function simplePage(title, parts, ...extra) {
  const err = errorBox();
  const boxes = parts.map(([, render, attrs]) => liveBox(render, attrs));
  const el = h('div', {}, h('h1', {}, title), err, ...boxes, ...extra);
  return {
    title, el,
    async refresh() {
      try {
        const all = await Promise.all(parts.map(([path]) => api(path)));
        all.forEach((data, i) => boxes[i].update(data));
        err.show(null);
      } catch (e) { err.show(e); throw e; }
    },
  };
}

const join = (xs) => (xs && xs.length ? xs.join(', ') : '-');

// ---- Overview ---------------------------------------------------------------------------------

/** Throughput from Prometheus /metrics of this origin: the rate of strom_topic_bytes_in_total. */
function sparkline() {
  const samples = [];
  const box = h('div', {class: 'spark'});
  const NS = 'http://www.w3.org/2000/svg';
  const draw = (rates) => {
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 300 60');
    svg.setAttribute('class', 'sparkline');
    const max = Math.max(1, ...rates);
    // One rate is a level line across (a single point would draw nothing).
    const shown = rates.length === 1 ? [rates[0], rates[0]] : rates;
    const pts = shown.map((r, i) => `${(i * 300) / Math.max(1, shown.length - 1)},${58 - (r / max) * 56}`);
    const line = document.createElementNS(NS, 'polyline');
    line.setAttribute('points', pts.join(' '));
    svg.append(line);
    const now = rates.length ? rates[rates.length - 1] : 0;
    box.replaceChildren(svg, h('span', {class: 'muted'}, `bytes in: ${fmtNum(Math.round(now))} B/s`));
  };
  return {
    el: box,
    async refresh(config) {
      if (!config.metrics) {
        box.replaceChildren(h('span', {class: 'muted'},
          'Throughput: no /metrics on this server (it is on strom serve\'s HTTP address).'));
        return;
      }
      try {
        const res = await fetch('/metrics');
        if (!res.ok) throw new Error(res.statusText);
        const text = await res.text();
        let total = 0;
        for (const line of text.split('\n')) {
          if (line.startsWith('strom_topic_bytes_in_total{')) total += Number(line.split(/\s+/).pop()) || 0;
        }
        samples.push([Date.now(), total]);
        if (samples.length > 61) samples.shift();
        const rates = [];
        for (let i = 1; i < samples.length; i++) {
          const dt = (samples[i][0] - samples[i - 1][0]) / 1000;
          rates.push(dt > 0 ? Math.max(0, samples[i][1] - samples[i - 1][1]) / dt : 0);
        }
        draw(rates);
      } catch (e) {
        box.replaceChildren(h('span', {class: 'muted'}, `Throughput unavailable: ${e.message}`));
      }
    },
  };
}

function overview() {
  const err = errorBox();
  const spark = sparkline();
  const stats = liveBox((o) => h('div', {},
    h('div', {class: 'cards'},
      card('Brokers', o.brokers.filter((b) => b.state === 'live').length),
      card('Controller', o.controller_id ?? 'none'),
      card('Topics', o.topics),
      card('Partitions', o.partitions),
      card('Under-replicated', o.under_replicated, o.under_replicated ? 'warn' : '', 'under-replicated'),
      card('Offline', o.offline, o.offline ? 'warn' : '')),
    section('Brokers', table(['ID', 'Host', 'Port', 'Rack', 'State', 'Controller'],
      o.brokers.map((b) => [b.id, b.host || '-', b.port >= 0 ? b.port : '-', b.rack || '-', b.state,
        b.controller ? 'yes' : ''])))));
  const el = h('div', {}, h('h1', {}, 'Overview'), err, stats, section('Throughput', spark.el));
  let config = null;
  return {
    title: 'Overview', el,
    async refresh() {
      config = config || await api('/api/config');
      await spark.refresh(config);
      try { stats.update(await api('/api/overview')); err.show(null); } catch (e) { err.show(e); throw e; }
    },
  };
}

function card(label, value, cls, id) {
  return h('div', {class: `card ${cls || ''}`, 'data-card': id},
    h('div', {class: 'card-value'}, String(value)), h('div', {class: 'card-label'}, label));
}

// ---- Topics -----------------------------------------------------------------------------------

function topics() {
  const filter = h('input', {type: 'search', placeholder: 'Search topics', id: 'topic-filter'});
  const showInternal = h('input', {type: 'checkbox', id: 'show-internal'});
  let rows = [];
  const box = h('div', {});
  const draw = () => {
    const q = filter.value.toLowerCase();
    const shown = rows.filter((t) => t.name.toLowerCase().includes(q) && (showInternal.checked || !t.internal));
    box.replaceChildren(table(['Topic', 'Partitions', 'Replication', 'Messages', 'Size', 'Under-replicated'],
      shown.map((t) => h('tr', {'data-topic-row': t.name},
        h('td', {}, link(`/topics/${enc(t.name)}`, t.name, {'data-topic': t.name})),
        h('td', {}, t.partitions), h('td', {}, t.replication_factor), h('td', {}, fmtNum(t.messages)),
        h('td', {class: 'size'}, fmtBytes(t.size)), h('td', {}, t.under_replicated)))),
    shown.length ? '' : h('p', {class: 'muted'}, 'No topics.'));
  };
  filter.addEventListener('input', draw);
  showInternal.addEventListener('change', draw);
  const err = errorBox();
  let last = null;
  return {
    title: 'Topics',
    el: h('div', {}, h('h1', {}, 'Topics'),
      h('div', {class: 'toolbar'}, filter, h('label', {}, showInternal, ' show internal')), err, box),
    async refresh() {
      try {
        const data = await api('/api/topics');
        err.show(null);
        const key = JSON.stringify(data);
        if (key !== last) { last = key; rows = data; draw(); }
      } catch (e) { err.show(e); throw e; }
    },
  };
}

function tabs(names, initial) {
  const bar = h('div', {class: 'tabs'});
  const panes = {};
  const buttons = {};
  const select = (n) => {
    for (const [k, p] of Object.entries(panes)) p.hidden = k !== n;
    for (const [k, b] of Object.entries(buttons)) b.classList.toggle('active', k === n);
    bar.onselect && bar.onselect(n);
  };
  for (const n of names) {
    buttons[n] = h('button', {type: 'button', 'data-tab': n, onclick: () => select(n)}, n);
    bar.append(buttons[n]);
    panes[n] = h('div', {class: 'pane', 'data-pane': n});
  }
  queueMicrotask(() => select(initial));
  return {bar, panes, select};
}

function topic(name) {
  const err = errorBox();
  const t = tabs(['Partitions', 'Messages', 'Produce', 'Configs'], 'Partitions');
  const parts = liveBox((d) => table(['Partition', 'Leader', 'Replicas', 'ISR', 'Log start', 'Log end', 'Messages', 'Size'],
    d.partitions.map((p) => [p.partition, p.leader ?? 'none', join(p.replicas), join(p.isr),
      fmtNum(p.log_start), fmtNum(p.log_end),
      p.log_end !== null && p.log_start !== null ? fmtNum(p.log_end - p.log_start) : '-', fmtBytes(p.size)])));
  const configs = liveBox((d) => table(['Config', 'Value', 'Source'],
    d.configs.map((c) => h('tr', {'data-config': c.name}, h('td', {}, c.name),
      h('td', {class: 'config-value'}, c.sensitive ? '(sensitive)' : (c.value ?? '-')),
      h('td', {class: 'config-source'}, c.source)))));
  t.panes.Partitions.append(parts);
  t.panes.Configs.append(configForm(name, (cs) => configs.update({configs: cs})), configs);
  const browser = messagesTab(name);
  t.panes.Messages.append(browser.el);
  t.panes.Produce.append(produceForm(name));
  let opened = false;
  t.bar.onselect = (n) => { if (n === 'Messages' && !opened) { opened = true; browser.run(); } };
  return {
    title: name,
    el: h('div', {}, h('h1', {}, h('span', {class: 'muted'}, 'Topic '), name), err, t.bar,
      ...Object.values(t.panes)),
    async refresh() {
      try {
        const d = await api(`/api/topics/${enc(name)}`);
        parts.update(d); configs.update(d); err.show(null);
        browser.setPartitions(d.partitions.map((p) => p.partition));
      } catch (e) { err.show(e); throw e; }
    },
  };
}

/** Shows a rendered payload in the chosen mode (auto picks the server's best guess). */
function payload(p, mode) {
  if (!p) return h('span', {class: 'muted'}, 'null');
  const m = mode === 'auto' ? p.format : mode;
  let text;
  if (m === 'json') text = p.json ?? p.text ?? p.hex;
  else if (m === 'hex' || m === 'binary' || p.text === null) text = p.hex;
  else text = p.text;
  return h('pre', {class: `payload ${m}`}, text, p.truncated ? h('span', {class: 'muted'}, ` … (${p.size} bytes)`) : '');
}

function messagesTab(topicName) {
  const partition = h('select', {id: 'msg-partition'}, h('option', {value: ''}, 'All partitions'));
  const from = h('select', {id: 'msg-from'},
    ['earliest', 'latest', 'offset', 'timestamp'].map((f) => h('option', {value: f}, f)));
  const offset = h('input', {type: 'number', id: 'msg-offset', placeholder: 'offset', min: 0});
  // Text, not datetime-local: Chromium's picker icon is a data: URL, and this also takes ms.
  const when = h('input', {type: 'text', id: 'msg-timestamp', placeholder: '2026-12-01T10:00:00Z or ms'});
  const limit = h('input', {type: 'number', id: 'msg-limit', value: 50, min: 1, max: 500});
  const mode = h('select', {id: 'msg-mode'},
    ['auto', 'text', 'json', 'hex'].map((f) => h('option', {value: f}, f)));
  const go = h('button', {type: 'button', id: 'msg-browse'}, 'Browse');
  const err = errorBox();
  const out = h('div', {id: 'messages'});
  let records = [];
  let known = '';
  const draw = () => out.replaceChildren(
    h('p', {class: 'muted'}, `${records.length} record(s)`),
    table(['Partition', 'Offset', 'Timestamp', 'Key', 'Value', 'Headers'], records.map((r) => h('tr', {class: 'message'},
      h('td', {}, r.partition), h('td', {}, r.offset),
      h('td', {title: r.timestamp_type}, fmtTime(r.timestamp)),
      h('td', {class: 'message-key'}, payload(r.key, mode.value)),
      h('td', {class: 'message-value'}, payload(r.value, mode.value)),
      h('td', {class: 'message-headers'},
        r.headers.map((x) => h('div', {}, h('b', {}, x.key), ': ', payload(x.value, mode.value))))))));
  const run = async () => {
    const q = new URLSearchParams({from: from.value, limit: limit.value || '50'});
    if (partition.value !== '') q.set('partition', partition.value);
    if (from.value === 'offset') q.set('offset', offset.value || '0');
    if (from.value === 'timestamp') {
      const ms = /^\d+$/.test(when.value.trim()) ? Number(when.value) : Date.parse(when.value);
      if (Number.isNaN(ms)) { err.show(new Error('timestamp: ISO-8601 time or milliseconds')); return; }
      q.set('timestamp', String(ms));
    }
    go.disabled = true;
    try {
      records = await api(`/api/topics/${enc(topicName)}/messages?${q}`);
      err.show(null);
      draw();
    } catch (e) { err.show(e); } finally { go.disabled = false; }
  };
  go.addEventListener('click', run);
  mode.addEventListener('change', draw);
  return {
    run,
    setPartitions(ps) {
      const key = ps.join(',');
      if (key === known) return;
      known = key;
      const chosen = partition.value;
      partition.replaceChildren(h('option', {value: ''}, 'All partitions'),
        ...ps.map((p) => h('option', {value: p}, `Partition ${p}`)));
      partition.value = chosen;
    },
    el: h('div', {},
      h('div', {class: 'toolbar'}, partition, from, offset, when, h('label', {}, 'limit ', limit),
        h('label', {}, 'show ', mode), go),
      err, out),
  };
}

function produceForm(topicName) {
  const partition = h('input', {type: 'number', id: 'produce-partition', placeholder: 'any', min: 0});
  const key = h('input', {type: 'text', id: 'produce-key', placeholder: 'key (empty: none)'});
  const value = h('textarea', {id: 'produce-value', rows: 4, placeholder: 'value'});
  const headers = h('textarea', {id: 'produce-headers', rows: 2, placeholder: 'headers, one name=value per line'});
  const result = h('p', {class: 'result', id: 'produce-result'});
  const err = errorBox();
  const send = h('button', {type: 'button', id: 'produce-send'}, 'Produce');
  send.addEventListener('click', async () => {
    send.disabled = true;
    try {
      const body = {
        key: key.value === '' ? null : key.value,
        value: value.value,
        partition: partition.value === '' ? null : Number(partition.value),
        headers: headers.value.split('\n').filter((l) => l.trim()).map((l) => {
          const i = l.indexOf('=');
          return i < 0 ? {key: l.trim(), value: null} : {key: l.slice(0, i).trim(), value: l.slice(i + 1)};
        }),
      };
      const r = await api(`/api/topics/${enc(topicName)}/produce`, body);
      err.show(null);
      result.textContent = `Produced to partition ${r.partition} at offset ${r.offset}.`;
    } catch (e) { err.show(e); result.textContent = ''; } finally { send.disabled = false; }
  });
  return h('form', {class: 'stack', onsubmit: (e) => e.preventDefault()},
    h('label', {}, 'Partition ', partition), h('label', {}, 'Key ', key), h('label', {}, 'Value ', value),
    h('label', {}, 'Headers ', headers), send, err, result);
}

/** Sets or removes one config override of a topic (the broker decides whether this user may). */
function configForm(topicName, onChanged) {
  const key = h('input', {type: 'text', id: 'config-name', placeholder: 'config, e.g. retention.ms'});
  const value = h('input', {type: 'text', id: 'config-value', placeholder: 'value'});
  const err = errorBox();
  const change = async (v) => {
    try {
      onChanged(await api(`/api/topics/${enc(topicName)}/configs`, {name: key.value.trim(), value: v}));
      err.show(null);
    } catch (e) { err.show(e); }
  };
  return h('div', {},
    h('div', {class: 'toolbar'}, key, value,
      h('button', {type: 'button', id: 'config-set', onclick: () => change(value.value)}, 'Set'),
      h('button', {type: 'button', id: 'config-delete', onclick: () => change(null)}, 'Remove override')),
    err);
}

// ---- Groups -----------------------------------------------------------------------------------

function groups() {
  return simplePage('Consumer groups', [['/api/groups', (gs) => gs.length
    ? table(['Group', 'State', 'Type', 'Members', 'Total lag'], gs.map((g) => h('tr', {'data-group-row': g.group_id},
      h('td', {}, link(`/groups/${enc(g.group_id)}`, g.group_id, {'data-group': g.group_id})),
      h('td', {}, g.state), h('td', {}, g.protocol_type || '-'), h('td', {}, fmtNum(g.members)),
      h('td', {class: 'total-lag', title: g.error}, g.error ? 'unavailable' : fmtNum(g.total_lag)))))
    : h('p', {class: 'muted'}, 'No consumer groups.')]]);
}

function group(id) {
  const topic = h('select', {id: 'reset-topic'});
  const to = h('select', {id: 'reset-to'},
    ['earliest', 'latest', 'offset', 'timestamp'].map((f) => h('option', {value: f}, f)));
  const value = h('input', {type: 'text', id: 'reset-value', placeholder: 'offset, or ms / ISO time'});
  const result = h('p', {class: 'result'});
  const resetErr = errorBox();
  const go = h('button', {type: 'button', id: 'reset-go'}, 'Reset offsets');
  go.addEventListener('click', async () => {
    let v = null;
    if (to.value === 'offset') v = Number(value.value);
    if (to.value === 'timestamp') v = /^\d+$/.test(value.value) ? Number(value.value) : Date.parse(value.value);
    const body = {topic: topic.value, to: to.value};
    if (v !== null) body.value = v;
    try {
      const r = await api(`/api/groups/${enc(id)}/reset-offsets`, body);
      resetErr.show(null);
      result.textContent = `Committed: ${r.offsets.map(([p, o]) => `${p}→${o}`).join(', ')}`;
    } catch (e) { resetErr.show(e); result.textContent = ''; }
  });
  let knownTopics = '';
  const page = simplePage(`Group ${id}`, [['/api/groups/' + enc(id), (g) => {
    const names = [...new Set(g.partitions.map((p) => p.topic))];
    if (names.join(',') !== knownTopics) {
      knownTopics = names.join(',');
      const chosen = topic.value;
      topic.replaceChildren(...names.map((n) => h('option', {value: n}, n)));
      if (names.includes(chosen)) topic.value = chosen;
    }
    return h('div', {},
      h('div', {class: 'cards'}, card('State', g.state), card('Members', g.members.length),
        card('Total lag', fmtNum(g.total_lag), '', 'total-lag')),
      section('Partitions', table(['Topic', 'Partition', 'Committed', 'Log end', 'Lag', 'Member'],
        g.partitions.map((p) => h('tr', {'data-partition': `${p.topic}-${p.partition}`},
          h('td', {}, link(`/topics/${enc(p.topic)}`, p.topic)), h('td', {}, p.partition),
          h('td', {}, fmtNum(p.committed)), h('td', {}, fmtNum(p.log_end)),
          h('td', {class: 'lag'}, fmtNum(p.lag)), h('td', {}, p.member || '-'))))),
      section('Members', g.members.length
        ? table(['Member', 'Client id', 'Host', 'Assignment'],
          g.members.map((m) => [m.member_id, m.client_id, m.client_host, join(m.assignment)]))
        : h('p', {class: 'muted'}, 'No members.')));
  }]], section('Reset offsets',
    h('p', {class: 'muted'}, 'Only for a group without members, and only if the broker allows it to you.'),
    h('div', {class: 'toolbar'}, topic, to, value, go), resetErr, result));
  return page;
}

function shareGroups() {
  return simplePage('Share groups', [['/api/share-groups', (gs) => gs.length
    ? table(['Group', 'State'], gs.map((g) => [link(`/share-groups/${enc(g.group_id)}`, g.group_id,
      {'data-share-group': g.group_id}), g.state]))
    : h('p', {class: 'muted'}, 'No share groups (share groups need group.share.enable=true).')]]);
}

function shareGroup(id) {
  return simplePage(`Share group ${id}`, [['/api/share-groups/' + enc(id), (g) => h('div', {},
    h('div', {class: 'cards'}, card('State', g.state), card('Epoch', g.group_epoch), card('Members', g.members.length)),
    section('Members', table(['Member', 'Epoch', 'Assignment'],
      g.members.map((m) => [m.member_id, m.member_epoch, join(m.assignment)]))))]]);
}

// ---- Security and configs ----------------------------------------------------------------------

function acls() {
  return simplePage('ACLs', [['/api/acls', (d) => !d.enabled
    ? h('p', {class: 'muted'}, 'No authorizer is configured (authorizer.class.name): every client may do everything.')
    : table(['Resource', 'Name', 'Pattern', 'Principal', 'Host', 'Operation', 'Permission'],
      d.acls.map((a) => [a.resource_type, a.name, a.pattern_type, a.principal, a.host, a.operation, a.permission]))]]);
}

function users() {
  return simplePage('SCRAM users', [['/api/users', (us) => us.length
    ? table(['User', 'Credentials'], us.map((u) => [u.name,
      u.error || u.credentials.map((c) => `${c.mechanism} (${c.iterations} iterations)`).join(', ')]))
    : h('p', {class: 'muted'}, 'No SCRAM users.')]]);
}

function brokers(id) {
  const which = id || 'default';
  const title = which === 'default' ? 'Broker configs: cluster defaults' : `Broker ${which} configs`;
  return simplePage(title, [
    ['/api/overview', (o) => h('div', {class: 'toolbar'}, 'Show: ',
      link('/brokers/default', 'cluster defaults', {class: which === 'default' ? 'active' : ''}),
      o.brokers.filter((b) => b.state === 'live').map((b) =>
        link(`/brokers/${b.id}`, `broker ${b.id}`, {class: String(b.id) === which ? 'active' : ''})))],
    [`/api/brokers/${enc(which)}/configs`, (cs) => table(['Config', 'Value', 'Source', 'Read-only'],
      cs.map((c) => [c.name, c.sensitive ? '(sensitive)' : (c.value ?? '-'), c.source, c.read_only ? 'yes' : '']))],
  ]);
}

function notFound() {
  return {title: 'Not found', el: h('div', {}, h('h1', {}, 'Not found'), link('/', 'Overview'))};
}

/** Pages by the first path segment; the rest of the path (a topic or group name) is passed on. */
export const pages = {
  overview,
  notFound,
  acls,
  users,
  brokers,
  topics: (rest) => (rest ? topic(rest) : topics()),
  groups: (rest) => (rest ? group(rest) : groups()),
  'share-groups': (rest) => (rest ? shareGroup(rest) : shareGroups()),
};
