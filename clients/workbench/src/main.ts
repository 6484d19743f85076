// The workbench page: a connection bar (realm, optional API token), a Console tab (live
// events and the meta API's sessions and subscriptions) and a Logs tab (containers,
// one container's log, record changes). The router serves it at / and tells it its
// WebSocket path in <meta name="switchyard-ws-path">.
//
// Query parameters: realm=NAME (then the page waits for Connect instead of joining
// realm1 anonymously), tab=console|logs. The WebSocket is always this router's own: a
// link must not be able to send the token typed here anywhere else.

import './style.css';
import { Console } from './console';
import { Containers, Records } from './containers';
import { Link, type LinkState } from './link';
import { MetaPanel } from './meta';
import { FrameMeter } from './meter';
import { LogTail } from './tail';

const params = new URLSearchParams(location.search);
const link = new Link();
const meter = new FrameMeter();

function wsUrl(): string {
  const path = document.querySelector<HTMLMetaElement>('meta[name="switchyard-ws-path"]')?.content || '/ws';
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

const $ = <E extends HTMLElement>(sel: string) => document.querySelector(sel) as E;

// ------------------------------------------------------------------ tabs

function showTab(name: string): void {
  for (const b of document.querySelectorAll<HTMLElement>('nav.tabs button')) b.classList.toggle('on', b.dataset.tab === name);
  for (const t of document.querySelectorAll<HTMLElement>('.tab')) t.hidden = t.id !== `tab-${name}`;
}
$('nav.tabs').addEventListener('click', (ev) => {
  const tab = (ev.target as HTMLElement).dataset.tab;
  if (tab) showTab(tab);
});

// ------------------------------------------------------------------ the parts

const consoleView = new Console(link);
const meta = new MetaPanel(link);
$('#tab-console').append(consoleView.el, meta.el);

let tail: LogTail | null = null;
const tailHost = $('#tail');
const historySelect = $<HTMLSelectElement>('#history');
const containers = new Containers(link, (id) => {
  tail?.stop();
  tail = new LogTail(link, id, Number(historySelect.value));
  tailHost.replaceChildren(tail.el);
});
const records = new Records(link);
$('#tab-logs').prepend(containers.el);
$('#tab-logs').append(records.el);

function stopAll(): void {
  consoleView.stop();
  meta.stop();
  containers.stop();
  records.stop();
  tail?.stop();
  tail = null;
  tailHost.replaceChildren();
}

// ------------------------------------------------------------------ connecting

const linkState = $('#link-state');
link.onState((s: LinkState) => {
  linkState.dataset.state = s;
  const why = s === 'closed' && link.closeReason ? `: ${link.closeReason} ${link.closeMessage}`.trimEnd() : '';
  linkState.textContent = `${s}${why}`;
});

const login = $<HTMLFormElement>('#login');
login.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = login.elements;
  const value = (name: string) => (f.namedItem(name) as HTMLInputElement).value.trim();
  connect(value('realm'), value('token'));
});

function connect(realm: string, token: string): void {
  stopAll();
  link.open({ url: wsUrl(), realm, token: token || undefined });
  consoleView.start();
  meta.start();
  containers.start();
  records.start();
  showTab(params.get('tab') || (token ? 'logs' : 'console'));
}

const realmParam = params.get('realm');
if (realmParam) (login.elements.namedItem('realm') as HTMLInputElement).value = realmParam;
showTab(params.get('tab') || 'console');
// The default: realm1 anonymously, so the router is seen working at once.
if (!realmParam) connect('realm1', '');

// For the browser tests and the benchmark (tests/browser/).
declare global {
  interface Window {
    workbench: unknown;
  }
}
window.workbench = {
  link,
  tail: () => tail,
  console: consoleView,
  meter: {
    start: () => meter.start(() => (tail ? tail.view.drawn : 0)),
    stop: () => meter.stop(),
  },
};
