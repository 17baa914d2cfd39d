// 我的 — what I sent and what I filed: the outbox with each item's state (waiting, sending,
// filed with its case number, refused with the reason to fix), my reports and where each stands,
// and my account: language, installing the app, signing out.
import { LANG, t } from '../i18n.js';
import * as net from './net.js';
import * as outbox from './outbox.js';
import { categoryName, clear, colourDot, h, toast, when } from './ui.js';

// What the worker can do about a refusal, in their language; the server's own words below it
// only when they are in the same language and add to it (a Chinese reason over an English
// sentence about fields and values helps nobody in the street).
// A refused field as the report form names it (the server names it as its API does).
const FIELD_LABELS = { description: 'field.description', handling: 'field.self_handling' };

export function refusal(error) {
  const { status, kind, field, nearest } = error;
  if (kind === 'outside-managed-area') return nearest ? t('field.why_outside_near', { grid: nearest }) : t('field.why_outside');
  if (status === 413 || field === 'photos') return t('field.why_photos');
  if (field === 'category' || field === 'category_key') return t('field.why_category');
  if (field === 'reason') return t('field.why_reason');
  if (status === 403) return t('field.why_forbidden');
  if (status === 404) return t('field.why_not_found');
  if (status === 409) return t('field.why_conflict');
  if (status === 422 && field) return t('field.why_invalid', { field: FIELD_LABELS[field] ? t(FIELD_LABELS[field]) : field });
  return error.title || t('field.why_other');
}

const bare = (text) => String(text || '').toLowerCase().replace(/[\s\p{P}\p{S}]+/gu, '');

// The server's detail of a refusal as a line under the reason, or null: left out when it is not
// in the app's language (an item refused before the worker switched, a detail the server has no
// translation for) or when it only says the reason again.
export function refusalDetail(error, reason) {
  const detail = error && error.detail;
  if (!detail || (error.detailLang || 'en') !== LANG) return null;
  const d = bare(detail);
  const r = bare(reason);
  if (!d || r.includes(d) || d.includes(r) || d === bare(error.title)) return null;
  return h('div', { class: 'detail muted small', lang: LANG }, detail);
}

function outboxItem(item) {
  const kind = item.kind === 'report' ? t('field.kind_report') : item.kind === 'step' ? t('field.kind_step')
    : t('field.kind_patrol');
  const state = h('span', { class: `state ${item.state}` }, t(`field.outbox_${item.state}`));
  const lines = [];
  if (item.state === 'done' && item.result && item.result.public_no) {
    lines.push(h('div', { class: 'filed' }, t(item.kind === 'report' ? 'field.filed_as' : 'field.step_done',
      { no: item.result.public_no }), ' ', h('a', { href: `#/case/${item.result.id}`, class: 'link' }, t('field.open'))));
  }
  if (item.state === 'refused' && item.error) {
    const reason = refusal(item.error);
    lines.push(h('div', { class: 'reason' }, t('field.refused_reason', { reason }),
      refusalDetail(item.error, reason)));
  }
  if (item.state === 'waiting' && item.attempts) {
    const why = item.error && item.error.auth ? t('field.waiting_signin')
      : t('field.retry_at', { at: when(new Date(item.nextAt).toISOString()), n: item.attempts });
    lines.push(h('div', { class: 'muted small' }, why));
  }
  const buttons = [];
  if (item.state === 'refused') {
    if (item.kind === 'report') buttons.push(h('a', { href: `#/report/edit-${item.id}`, class: 'button' }, t('field.fix')));
    buttons.push(h('button', { type: 'button', class: 'button', onclick: async () => {
      await outbox.remove(item.id);
    } }, t('field.discard')));
  }
  if (item.state === 'waiting') {
    buttons.push(h('button', { type: 'button', class: 'button', onclick: () => outbox.flush({ force: true }) }, t('field.send_now')));
  }
  return h('li', { class: `outbox-item ${item.state}`, 'data-id': item.id, 'data-kind': item.kind, 'data-state': item.state },
    h('div', { class: 'row between' }, h('b', {}, `${kind} · ${item.label || ''}`), state),
    h('div', { class: 'muted small' }, when(new Date(item.createdAt).toISOString()),
      item.photos && item.photos.length ? ` · ${t('field.photos_n', { n: item.photos.length })}` : ''),
    ...lines, buttons.length ? h('div', { class: 'row' }, ...buttons) : null);
}

async function drawOutbox(box) {
  const items = (await outbox.list()).filter((i) => i.kind === 'report' || i.kind === 'step' || i.state !== 'done')
    .reverse();
  clear(box);
  box.append(h('h2', {}, t('field.outbox')));
  if (!items.length) box.append(h('p', { class: 'muted' }, t('field.outbox_empty')));
  else box.append(h('ul', { class: 'outbox', id: 'outbox-list' }, ...items.map(outboxItem)));
}

// Drawn when the screen opens and again when a report is filed: the latest draw wins (two
// fetches in flight must not leave two lists), and the box says it is loading meanwhile.
let reportsDraw = 0;
async function drawReports(box) {
  const mine = ++reportsDraw;
  if (!box.querySelector('#report-list')) {
    clear(box);
    box.append(h('h2', {}, t('field.my_reports')), h('p', { class: 'muted', id: 'reports-loading' }, t('field.loading')));
  }
  let page;
  let fresh = true;
  try {
    page = await net.api('/me/reports?limit=50');
    await net.set('my-reports', { ...page, fetchedAt: new Date().toISOString() });
  } catch (e) {
    if (e instanceof net.AuthNeeded) return;
    page = await net.get('my-reports');
    fresh = false;
  }
  if (mine !== reportsDraw) return;
  const content = [h('h2', {}, t('field.my_reports'))];
  if (!page) content.push(h('p', { class: 'muted' }, t('field.offline_no_reports')));
  else {
    if (!fresh) content.push(h('p', { class: 'muted small' }, t('field.tasks_cached', { at: when(page.fetchedAt) })));
    if (!page.items.length) content.push(h('p', { class: 'muted' }, t('field.no_reports')));
    content.push(h('ul', { class: 'reports', id: 'report-list' }, ...page.items.map((r) => h('li', { 'data-id': r.id },
      h('a', { href: `#/case/${r.id}` },
        h('div', { class: 'row between' }, h('b', {}, `${r.public_no} · ${categoryName(r.category_name, LANG)}`),
          h('span', { class: `state ${r.state}` }, t(`field.state_${r.state}`))),
        h('div', { class: 'muted small' }, when(r.reported_at), ' · ', r.grid_code || '', ' ', colourDot(r.colour)),
        // a merged report: the case it went into, and where that stands (its outcome is ours)
        r.outcome ? h('div', { class: 'small outcome' }, t('field.merged_outcome', {
          no: r.outcome.primary_public_no, state: t(`field.state_${r.outcome.state}`) })) : null)))));
  }
  clear(box);
  box.append(...content);
}

function account(setLanguage, languageSwitch) {
  const user = net.user();
  const install = h('button', { type: 'button', class: 'button', id: 'install', hidden: !window.gridcoreInstall,
                                onclick: async () => {
                                  const prompt = window.gridcoreInstall;
                                  if (!prompt) return;
                                  prompt.prompt();
                                  await prompt.userChoice;
                                  window.gridcoreInstall = null;
                                  install.hidden = true;
                                } }, t('field.install'));
  const ios = /iPhone|iPad/.test(navigator.userAgent) && !navigator.standalone;
  return h('section', { class: 'panel account', id: 'account' },
    h('h2', {}, t('field.account')),
    h('p', {}, h('b', { id: 'me', translate: 'no' }, user.username), ' · ', t(`field.role_${user.role}`)),
    user.areas && user.areas.length ? h('p', { class: 'muted small' }, t('field.my_areas', { areas: user.areas.join(', ') })) : null,
    languageSwitch(), install, ios ? h('p', { class: 'muted small' }, t('field.install_ios')) : null,
    h('button', { type: 'button', class: 'button danger', id: 'signout', onclick: async () => {
      // A phone handed to the next worker must not leave this one on duty until the server's
      // longest-shift limit ends the shift: signing out ends it, and its end is sent now,
      // while this worker's token can still send it.
      const patrol = await import('./patrol.js');
      if (patrol.onDuty()) {
        if (!window.confirm(t('field.signout_on_duty'))) return;
        await patrol.stop();
        await outbox.flush({ force: true });
      }
      const waiting = (await outbox.pending()).length;
      if (waiting && !window.confirm(t('field.signout_queue', { n: waiting }))) return;
      await net.signOut();
      try { await caches.delete('gridcore-field-photos'); } catch (e) { /* no cache API */ }
      toast(t('field.signed_out'));
      location.hash = '#/where';
      window.dispatchEvent(new CustomEvent('auth-needed', { detail: { reason: 'signed-out' } }));
    } }, t('common.sign_out')));
}

export async function render(view, { setLanguage, languageSwitch }) {
  const box = h('section', { class: 'panel', id: 'outbox' });
  const reports = h('section', { class: 'panel', id: 'my-reports' });
  view.append(box, reports, account(setLanguage, languageSwitch));
  await drawOutbox(box);
  drawReports(reports);
  const onChange = () => drawOutbox(box);
  const onFiled = () => drawReports(reports);
  window.addEventListener('outbox-changed', onChange);
  window.addEventListener('outbox-filed', onFiled);
  return () => {
    window.removeEventListener('outbox-changed', onChange);
    window.removeEventListener('outbox-filed', onFiled);
  };
}
