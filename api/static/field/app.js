// 网格通 — the grid worker's phone app: the shell (header, tabs, a screen per URL hash),
// sign-in, language, the service worker, and what runs whatever screen is open: the outbox,
// the area download, the patrol recorder. Screens are modules loaded when first opened.
import { LANG, addMessages, loadMessages, t, useLanguage } from '../i18n.js';
import * as net from './net.js';
import * as outbox from './outbox.js';
import { $, clear, h, icon, toast } from './ui.js';

const ROOT = net.ROOT;
const NAMESPACES = ['common', 'field', 'problem', 'intel'];
const config = JSON.parse(document.getElementById('field-config').textContent);
document.documentElement.dataset.timezone = config.timezone;
const SCREENS = {
  where: () => import('./where.js'), report: () => import('./report.js'),
  tasks: () => import('./tasks.js'), case: () => import('./tasks.js'),
  patrol: () => import('./patrol.js'), mine: () => import('./mine.js'),
};
const TABS = ['where', 'report', 'tasks', 'patrol', 'mine'];
let cleanup = null;
let routing = 0;
// The screen a case was opened from (待办 or 我的): its tab stays lit and 返回 goes back to it.
let caseFrom = 'tasks';

async function setLanguage(lang) {
  useLanguage(lang);
  localStorage.setItem('gridcore-lang', lang);
  document.cookie = `gridcore_lang=${lang}; path=/; max-age=31536000; samesite=lax`;
  await loadMessages(NAMESPACES);
  chrome();
  route();
}

function chrome() {
  document.title = t('field.app_name');
  $('#app-name').textContent = t('field.app_name');
  const nav = clear($('#tabs'));
  nav.setAttribute('aria-label', t('field.tabs'));
  for (const id of TABS) {
    nav.append(h('a', { href: `#/${id}`, id: `tab-${id}`, class: 'tab' }, icon(id),
      h('span', { class: 'label' }, t(`field.tab_${id}`)),
      h('span', { class: 'badge', hidden: true })));
  }
  status();
}

// Many events call this at once (the outbox moving an item along, going online): only the
// latest call writes, so an older count read before the last change never stays on screen.
let statusCalls = 0;
async function status() {
  const mine = ++statusCalls;
  const online = navigator.onLine !== false;
  const chip = $('#net');
  chip.textContent = online ? t('field.online') : t('field.offline');
  chip.className = `chip ${online ? 'ok' : 'warn'}`;
  const waiting = (await outbox.pending()).length;
  if (mine !== statusCalls) return;
  const queued = $('#queued');
  queued.hidden = !waiting;
  queued.textContent = t('field.queued_n', { n: waiting });
  const duty = await net.get('patrol');
  if (mine !== statusCalls) return;
  $('#duty').hidden = !(duty && duty.shiftId);
  $('#duty').textContent = t('field.on_duty');
  const tasks = await net.get('tasks');
  if (mine !== statusCalls) return;
  const badge = $('#tab-tasks .badge');
  if (badge) {
    const n = tasks && net.user() ? tasks.items.length : 0;
    badge.hidden = !n;
    badge.textContent = n > 99 ? '99+' : String(n);
  }
}

// -- sign-in: once per device; the outbox waits meanwhile --------------------------------------
async function signinScreen(view) {
  const reason = sessionStorage.getItem('auth-reason');
  const waiting = (await outbox.pending()).length;
  const error = h('p', { class: 'error', role: 'alert', id: 'signin-error' });
  const username = h('input', { id: 'username', name: 'username', autocomplete: 'username',
                                autocapitalize: 'none', required: true,
                                value: await net.lastUsername() });
  const password = h('input', { id: 'password', name: 'password', type: 'password',
                                autocomplete: 'current-password', required: true });
  const button = h('button', { type: 'submit', class: 'primary big', id: 'signin-button' },
                   t('common.sign_in'));
  const form = h('form', { class: 'signin', id: 'signin', onsubmit: async (event) => {
    event.preventDefault();
    error.textContent = '';
    button.disabled = true;
    try {
      await net.signIn(username.value.trim(), password.value);
    } catch (e) {
      error.textContent = e instanceof net.Offline ? t('field.signin_offline')
        : e.status === 401 ? t('field.signin_wrong') : e.message;
    } finally {
      button.disabled = false;
    }
  } },
  h('img', { src: `${ROOT}/static/field/icons/icon-192.png`, alt: '', class: 'logo', width: 96, height: 96 }),
  h('h1', {}, t('field.app_name')),
  h('p', { class: 'hint' }, t('field.signin_hint')),
  reason && reason !== 'signed-out' ? h('p', { class: 'notice', id: 'signin-reason' }, t('field.signin_again')) : null,
  waiting ? h('p', { class: 'notice', id: 'signin-queue' }, t('field.signin_queue_kept', { n: waiting })) : null,
  h('label', { for: 'username' }, t('common.username')), username,
  h('label', { for: 'password' }, t('common.password')), password,
  error, button, languageSwitch());
  view.append(form);
}

export function languageSwitch() {
  return h('div', { class: 'lang-switch', role: 'group', 'aria-label': t('common.language') },
    ...['zh-CN', 'en'].map((code) => h('button', {
      type: 'button', lang: code, class: code === document.documentElement.lang ? 'on' : '',
      'aria-pressed': String(code === document.documentElement.lang),
      onclick: () => setLanguage(code) }, t(`common.language_${code}`))));
}

async function route() {
  const hash = location.hash.replace(/^#\/?/, '') || 'where';
  const [name, arg] = hash.split('/');
  const mine = ++routing;
  if (cleanup) {
    try { cleanup(); } catch (e) { /* a screen failing to clean up must not stop the next */ }
    cleanup = null;
  }
  const view = clear($('#view'));
  const known = SCREENS[name] ? name : 'where';
  if (known === 'tasks' || known === 'mine') caseFrom = known;
  document.querySelectorAll('#tabs .tab').forEach((a) => {
    a.classList.toggle('active', a.id === `tab-${known === 'case' ? caseFrom : known}`);
  });
  if (!net.user()) {
    $('#title').textContent = t('field.title_signin');
    view.dataset.screen = 'signin';
    await signinScreen(view);
    return;
  }
  $('#title').textContent = t(`field.title_${known}`);
  view.dataset.screen = known;
  try {
    const module = await SCREENS[known]();
    if (mine !== routing) return; // another tab was tapped meanwhile
    const done = await module.render(view, { arg, name: known, from: caseFrom, config, setLanguage, languageSwitch,
                                             status });
    // A screen still rendering when the next route began (a tap, a sign-in, a revoked
    // session) is already off the page: it is cleaned up now, never left holding a map and
    // its position watch, and never overwrites the cleanup of the screen now shown.
    if (mine !== routing) {
      if (done) {
        try { done(); } catch (e) { /* the next screen is already shown */ }
      }
      return;
    }
    cleanup = done;
  } catch (e) {
    console.error(e);
    view.append(h('p', { class: 'error' }, t('field.screen_failed'), ' ', String(e.message || e)));
  }
}

async function boot() {
  const chosen = localStorage.getItem('gridcore-lang') || LANG;
  const lang = chosen === 'en' ? 'en' : 'zh-CN';
  const carried = JSON.parse(document.getElementById('field-messages').textContent);
  useLanguage(lang);
  if (carried.lang === lang) addMessages(carried.messages); // no request on the first visit
  else {
    try { await loadMessages(NAMESPACES); } catch (e) { addMessages(carried.messages); }
  }
  chrome();
  await net.loadAuth();
  window.addEventListener('hashchange', route);
  for (const event of ['online', 'offline', 'outbox-changed', 'tasks-changed', 'duty-changed']) {
    window.addEventListener(event, status);
  }
  // The header was drawn before the sign-in state was read: an 'offline' (or 'online') heard
  // meanwhile had no listener yet, and the header kept saying 在线 on a page offline.
  status();
  window.addEventListener('auth-needed', (event) => {
    sessionStorage.setItem('auth-reason', (event.detail && event.detail.reason) || 'revoked');
    toast(t('field.signin_again'), 'warn');
    route();
  });
  window.addEventListener('signed-in', () => {
    sessionStorage.removeItem('auth-reason');
    net.syncArea().catch(() => {});
    route();
  });
  await route();
  document.body.dataset.ready = '1';
  performance.mark('gridcore-ready'); // benchmarks/bench_field.py reads it
  outbox.start();
  net.persist();
  if (net.user()) {
    net.syncArea().catch(() => {});
    const duty = await net.get('patrol');
    if (duty && duty.shiftId) (await import('./patrol.js')).resume(config);
  }
  setInterval(() => {
    if (net.user() && navigator.onLine !== false) net.syncArea().catch(() => {});
  }, 10 * 60_000);
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register(`${ROOT}/m/sw.js`, { scope: `${ROOT}/m/` })
      .catch((e) => console.warn('service worker not registered', e));
  }
}

window.addEventListener('beforeinstallprompt', (event) => {
  event.preventDefault();
  window.gridcoreInstall = event; // the 我的 screen offers it as a button
});

boot();
