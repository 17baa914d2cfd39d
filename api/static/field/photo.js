// Photos are made small on the phone before they are queued: the longest side at most 1600
// px, JPEG, and at most ~400 KB (a 12-megapixel camera photo is 3–6 MB: on a weak network it
// would never leave the phone). Upright: the browser applies the EXIF orientation when it
// decodes the image into an <img>.
import { t } from '../i18n.js';
import { clear, h, icon, toast } from './ui.js';

export const MAX_SIDE = 1600;
export const BUDGET = 400_000;
const QUALITIES = [0.82, 0.72, 0.62, 0.5];

function decode(file) {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.onload = () => { URL.revokeObjectURL(url); resolve(img); };
    img.onerror = () => { URL.revokeObjectURL(url); reject(new Error('not an image')); };
    img.src = url;
  });
}

function toBlob(canvas, quality) {
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
}

// A Blob (JPEG) of the photo at most MAX_SIDE on its longest side and within BUDGET bytes.
export async function shrink(file, maxSide = MAX_SIDE, budget = BUDGET) {
  const img = await decode(file);
  const scale = Math.min(1, maxSide / Math.max(img.naturalWidth, img.naturalHeight));
  const w = Math.max(1, Math.round(img.naturalWidth * scale));
  const h = Math.max(1, Math.round(img.naturalHeight * scale));
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff'; // a transparent PNG becomes JPEG on white, not black
  ctx.fillRect(0, 0, w, h);
  ctx.drawImage(img, 0, 0, w, h);
  let blob = null;
  for (const q of QUALITIES) {
    blob = await toBlob(canvas, q);
    if (blob && blob.size <= budget) break;
  }
  canvas.width = 0; // let the phone free the pixels now
  return { blob, width: w, height: h };
}

// How many photos one report or step may carry (GRIDCORE_MAX_PHOTOS, in the page's settings):
// the server refuses one more, so the form says the limit and stops adding at it.
export function photoLimit() {
  try {
    return Number(JSON.parse(document.getElementById('field-config').textContent).max_photos) || 6;
  } catch (e) {
    return 6;
  }
}

// A photo field: the camera button and the thumbnails of ``photos`` (an array it keeps:
// {blob, name, url}); photos are made small as they are taken. ``others()``: photos of the same
// request in another field (a self-handled report's before and after share the limit);
// ``onChange``: called when this field's photos change (to redraw that other field).
// The element's ``redraw()`` draws the field again.
export function photoField(photos, id = 'photo', { others = () => 0, onChange = () => {} } = {}) {
  const limit = photoLimit();
  const room = () => Math.max(0, limit - others() - photos.length);
  const note = h('p', { class: 'muted small photo-limit', id: `${id}-limit`, 'aria-live': 'polite' });
  const input = h('input', { type: 'file', accept: 'image/*', capture: 'environment', multiple: true,
                             id: `${id}-input`, class: 'visually-hidden' });
  const box = h('div', { class: 'thumbs', id: `${id}-thumbs` });
  function draw() {
    clear(box);
    photos.forEach((p, i) => box.append(h('figure', { class: 'thumb' },
      h('img', { src: p.url, alt: t('field.photo_n', { n: i + 1 }) }),
      h('figcaption', {}, `${Math.round(p.blob.size / 1024)} KB`),
      h('button', { type: 'button', class: 'remove', 'aria-label': t('field.photo_remove'), onclick: () => {
        URL.revokeObjectURL(p.url);
        photos.splice(i, 1);
        draw();
        onChange();
      } }, '×'))));
    const left = room();
    if (left > 0) box.append(h('label', { class: 'button big photo-add', for: input.id }, icon('camera'), t('field.photo_take')));
    input.disabled = left === 0;
    note.textContent = left > 0 ? t('field.photos_room', { max: limit, n: left }) : t('field.photos_full', { max: limit });
  }
  input.addEventListener('change', async () => {
    const files = [...input.files];
    input.value = '';
    const take = files.slice(0, room());
    let added = 0;
    for (const file of take) {
      try {
        const { blob } = await shrink(file);
        if (!room()) break; // another field filled up meanwhile
        photos.push({ blob, name: `photo-${photos.length + 1}.jpg`, url: URL.createObjectURL(blob) });
        added += 1;
      } catch (e) {
        toast(t('field.photo_unreadable'), 'warn');
      }
    }
    if (take.length < files.length) toast(t('field.photos_some_added', { n: added, max: limit }), 'warn');
    draw();
    onChange();
  });
  draw();
  const field = h('div', { class: 'photo-field' }, input, box, note);
  field.redraw = draw;
  return field;
}
