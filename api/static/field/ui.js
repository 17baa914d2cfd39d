// Small DOM helpers for the phone app: elements without innerHTML (no markup built from
// strings, so nothing a server or a user typed can become a script), a toast, time.
import { cityTime, t } from '../i18n.js';

// h('button', {class: 'big', onclick: fn, 'data-id': 3}, 'text', child…)
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let toastTimer = 0;
export function toast(message, kind = 'info') {
  const el = $('#toast');
  el.textContent = message;
  el.className = `show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.className = ''; }, 3500);
}

// The one time format of every page: the city's wall clock with its offset.
export const when = (iso) => cityTime(iso, document.documentElement.dataset.timezone || 'Asia/Shanghai');

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

// A category's name in the current language (the catalogue's key is the language). The app
// shows it as a label (a task's title, the category button, a part nearby): English begins it
// with a capital ('Dirty road', not 'dirty road' beside 'Report a problem').
export function categoryName(names, lang) {
  if (!names) return '';
  if (lang !== 'en') return names['zh-CN'] || names.name_zh;
  const name = names.en || names.name_en || '';
  return name.charAt(0).toUpperCase() + name.slice(1);
}

export function colourDot(colour) {
  return h('span', { class: `dot ${colour || 'none'}`, title: colour ? t(`field.clock_${colour}`) : '' });
}

export function metres(m) {
  if (m === null || m === undefined || Number.isNaN(m)) return '';
  return m >= 1000 ? `${(m / 1000).toFixed(1)} km` : `${Math.round(m)} m`;
}

// Icons as inline SVG (no icon font, no file to fetch; every phone draws them the same).
const ICONS = {
  where: 'M12 2v3M12 19v3M2 12h3M19 12h3M12 7a5 5 0 1 0 0 10a5 5 0 1 0 0-10zM12 10.5a1.5 1.5 0 1 0 0 3a1.5 1.5 0 1 0 0-3z',
  report: 'M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18zM12 7.5v9M7.5 12h9',
  tasks: 'M9 6h11M9 12h11M9 18h11M3.5 6l1.5 1.5L7.5 4.5M3.5 12l1.5 1.5L7.5 10.5M3.5 18l1.5 1.5L7.5 16.5',
  patrol: 'M6 20c-1.5 0-2.5-1-2.5-2.5S5 14 6.5 14s2 1.5 1.5 3S7.5 20 6 20zM15.5 12c-1.5 0-2.5-1-2-2.5S15 6 16.5 6s2.5 1.5 2 3-1.5 3-3 3zM6.5 11V9M16 16v2',
  mine: 'M12 4a4 4 0 1 0 0 8a4 4 0 1 0 0-8zM4 21c0-4.4 3.6-7 8-7s8 2.6 8 7',
  camera: 'M3 8h4l2-3h6l2 3h4v11H3zM12 10a3.5 3.5 0 1 0 0 7a3.5 3.5 0 1 0 0-7z',
};

export function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', `icon icon-${name}`);
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', ICONS[name]);
  svg.append(path);
  return svg;
}
