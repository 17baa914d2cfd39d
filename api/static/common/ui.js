// What every page of the desk shares: escaping, data marked as data (translate="no": names,
// codes and what people wrote are not the page's words), names of states, steps and classes
// from the catalogue, the one time format, toasts and the photo viewer.
import { LANG, cityTime, t } from '../i18n.js';
import { photoBlob } from './api.js';

const config = JSON.parse(document.getElementById('page-config')?.textContent || '{}');
export const TZ = config.timezone || 'Asia/Shanghai';
export const DEV = !!config.dev;
export const $ = (id) => document.getElementById(id);

export const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
// A value from the data (a code, a name, what someone wrote): never the page's own words.
export const data = (s, cls = '') => `<span class="data ${cls}" translate="no">${esc(s)}</span>`;

const named = (prefix, value) => {
  const key = `${prefix}${value}`;
  const text = t(key);
  return text === key ? String(value ?? '') : text;
};
export const stateName = (s) => named('case.state_', s);
export const actionName = (a) => named('case.action_', a);
export const kindName = (k) => named('case.kind_', k);
export const roleName = (r) => named('case.role_', r);
// a role standing alone (the top bar, the role picker): "Department handler", not a word of a
// sentence ("a department handler may not…")
export const roleLabel = (r) => named('common.role_', r);
export const sourceName = (s) => named('case.source_', s);
export const levelName = (l) => named('case.level_', l);
export const bucketName = (b) => named('case.bucket_', b);
export const fieldName = (f) => named('case.field_', f);

// A class's name in the page's language (the server sends both).
export function className(key, names) {
  if (!names) return key || '';
  return LANG === 'zh-CN' ? names.zh : names.en;
}

// A name standing alone as a label (a filter's option): English begins it with a capital, as
// the rest of its labels ('exposed garbage' is a word of sentences, 'Exposed garbage' an option).
export const asLabel = (text) => (LANG === 'en' && text ? text.charAt(0).toUpperCase() + text.slice(1) : text);

export const when = (iso) => cityTime(iso, TZ);

// Items of a list, and clauses, joined as the page's language writes them ("A、B" / "A, B");
// a label and its value are joined by common.sep_label ("主办部门：" / "Lead department: ").
export const listOf = (items) => items.join(t('common.sep_list'));
export const clausesOf = (items) => items.join(t('common.sep_clause'));

// A time limit as the taxonomy writes it (30m, 2h, 5wh, 3wd) in words.
export function limitText(limit) {
  const m = /^(\d+(?:\.\d+)?)(wd|wh|m|h)$/.exec(limit || '');
  return m ? t(`time.limit_${m[2]}`, { n: m[1] }) : String(limit || '');
}

// "2 h 10 min left" / "3 h overdue", in working-clock terms as the server computed them.
export function span(seconds) {
  const m = Math.round(Math.abs(seconds) / 60);
  if (m < 60) return t('time.minutes', { n: m });
  const h = Math.floor(m / 60), rest = m % 60;
  if (h < 48) return rest ? t('time.hours_minutes', { h, m: rest }) : t('time.hours', { h });
  return t('time.days', { n: Math.round(h / 24) });
}

export const clockName = (colour) => (colour && colour !== 'none' ? t(`common.clock_${colour}`) : t('case.clock_none'));

export function dueText(clock) {
  if (!clock || !clock.deadline) return '';
  const left = (new Date(clock.deadline) - Date.now()) / 1000;
  return left >= 0 ? t('time.due_in', { span: span(left) }) : t('time.overdue_by', { span: span(left) });
}

export function clockDot(clock) {
  const colour = clock ? clock.colour : 'none';
  return `<span class="dot ${esc(colour)}" title="${esc(clockName(colour))}"></span>`;
}

export function toast(html, { onClick = null, kind = 'info', timeout = 8000 } = {}) {
  const box = $('toasts');
  if (!box) return null;
  const el = document.createElement('div');
  el.className = `toast ${kind}`;
  el.innerHTML = html;
  el.setAttribute('role', 'status');
  if (onClick) { el.classList.add('clickable'); el.onclick = () => { onClick(); el.remove(); }; }
  box.prepend(el);
  while (box.children.length > 4) box.lastChild.remove();
  if (timeout) setTimeout(() => el.remove(), timeout);
  return el;
}

// Photos: thumbnails that open large in the lightbox.
export async function fillPhotos(root) {
  for (const img of root.querySelectorAll('img[data-src]')) {
    const src = img.dataset.src;
    img.removeAttribute('data-src');
    photoBlob(src).then((url) => { img.src = url; }).catch(() => {
      img.replaceWith(Object.assign(document.createElement('span'),
        { className: 'photo-missing', textContent: t('case.photo_missing') }));
    });
  }
}

export function wireLightbox() {
  const box = $('lightbox');
  if (!box) return;
  document.addEventListener('click', async (ev) => {
    const img = ev.target.closest('img[data-large]');
    if (!img) return;
    $('lightbox-img').src = await photoBlob(img.dataset.large).catch(() => img.src);
    box.hidden = false;
  });
  box.onclick = () => { box.hidden = true; $('lightbox-img').removeAttribute('src'); };
}

// The event as a sentence (the same catalogue the server's webhook texts use).
export function eventText(e) {
  const d = e.details || {};
  const detail = t(`notify.detail_${e.kind}`, {
    department: e.department || '', reason: d.reason || '', assignee: e.assignee || '',
    deadline: d.deadline ? when(d.deadline) : '', primary: d.primary_public_no || d.primary_case_id || '',
    action: actionName(d.action || '') });
  return { title: `${kindName(e.kind)} · ${e.public_no || e.case_id}`, detail };
}

// The form of a lifecycle step (the map's drawer and the workbench): its fields, the step's
// button, cancel, and the line its errors go to.
export function stepFormHtml(action, fields, cancel) {
  return `<form id="step" data-action="${esc(action)}" novalidate>${fields}
    <div class="buttons"><button type="submit">${esc(actionName(action))}</button>
    <button type="button" class="secondary" id="step-cancel">${esc(cancel)}</button></div>
    <p class="error" role="alert"></p></form>`;
}
