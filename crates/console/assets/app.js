// app.js: the console's hash router and live updates. Each page gives an element and a
// refresh(); the current page is refreshed every few seconds (polling the JSON API), and only
// re-rendered when the data changed, so a page never flickers under the reader.
import {pages} from './pages.js';

const REFRESH_MS = 3000;
const main = document.getElementById('main');
const status = document.getElementById('status');
let current = null;

function route() {
  const path = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
  const parts = path.split('/').filter(Boolean);
  for (const a of document.querySelectorAll('#nav a')) {
    const target = a.getAttribute('href').slice(1);
    a.classList.toggle('active', target === '/' ? parts.length === 0 : path.startsWith(target));
  }
  const [name, ...rest] = parts;
  const page = (pages[name || 'overview'] || pages.notFound)(rest.join('/'));
  current = page;
  main.replaceChildren(page.el);
  document.title = `${page.title} · Strom console`;
  refresh();
}

async function refresh() {
  const page = current;
  if (!page || !page.refresh || page.busy) return;
  page.busy = true;
  try {
    await page.refresh();
    status.textContent = `updated ${new Date().toLocaleTimeString('en-GB')}`;
    status.classList.remove('bad');
  } catch (e) {
    status.textContent = `update failed: ${e.message}`;
    status.classList.add('bad');
  } finally {
    page.busy = false;
  }
}

window.addEventListener('hashchange', route);
setInterval(refresh, REFRESH_MS);
route();
