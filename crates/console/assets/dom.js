// dom.js: the small helpers every page uses: building elements (text only, never innerHTML, so
// topic names and record values cannot inject markup), tables, JSON fetches and formatting.

/** An element: h('a', {href: '#/x', class: 'c'}, 'text', child, ...). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** A table from column headers and rows of cells (strings, numbers or nodes). */
export function table(headers, rows, attrs) {
  return h('table', attrs,
    h('thead', {}, h('tr', {}, headers.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows.map((r) => (r instanceof Node ? r : h('tr', {}, r.map((c) => h('td', {}, c)))))));
}

/** GET (or POST with a JSON body) an API path; throws Error(message) on a non-2xx answer. */
export async function api(path, body) {
  const init = body === undefined ? {} : {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify(body),
  };
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`);
  return data;
}

/** A link to a page of the console's hash router. */
export function link(path, text, attrs) {
  return h('a', {href: '#' + path, ...attrs}, text);
}

export function enc(name) {
  return encodeURIComponent(name);
}

export function fmtTime(ms) {
  if (ms === undefined || ms === null || ms < 0) return '-';
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

export function fmtNum(n) {
  return n === undefined || n === null ? '-' : Number(n).toLocaleString('en-US');
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** A block that shows an error message (or nothing). */
export function errorBox() {
  const el = h('div', {class: 'error', hidden: true});
  el.show = (e) => { el.textContent = e ? String(e.message || e) : ''; el.hidden = !e; };
  return el;
}

/** A titled section. */
export function section(title, ...children) {
  return h('section', {}, h('h2', {}, title), ...children);
}
