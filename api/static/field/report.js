// 上报 — report a problem: where (the GPS fix, a pin the worker may drag; the original fix and
// its accuracy are kept), what (a category found by Chinese or English name or code, recent
// ones first; or a nearby city part, which presets the category and is linked), photos made
// small on the phone, a description. Saved to the outbox at once: it is sent when it can be.
// A small problem solved on the spot is filed as self-handled (自处置): what was done and a
// photo after the work beside the one before — verified, handled and closed in one report.
import { LANG, t } from '../i18n.js';
import { distanceM, gridAt, partsNear, watchPosition } from './geo.js';
import {
  DOT_BOX, PIN_BOX, gridsLayer, leaflet, makeMap, partsLayer, pin as makePin, positionLayer, removeMap,
} from './mapview.js';
import * as net from './net.js';
import * as outbox from './outbox.js';
import { photoField, photoLimit } from './photo.js';
import { refusal, refusalDetail } from './mine.js';
import { categorySuggestions } from './suggest.js';
import { categoryName, clear, h, metres, toast } from './ui.js';

const RECENT = 'recent-categories';
const empty = () => ({ category: null, description: '', photos: [], pin: null, fix: null, part: null, editing: null,
  solved: false, handling: '', after: [] });
let draft = empty();

const nameOf = (c) => (c ? categoryName(c, LANG) : '');
const round7 = (v) => Math.round(v * 1e7) / 1e7;

function matches(c, query) {
  if (!query) return true;
  const q = query.trim().toLowerCase();
  return c.key.toLowerCase().includes(q) || c.code.includes(q) || c.name_zh.includes(query.trim())
    || c.name_en.toLowerCase().includes(q);
}

// The category picker: a sheet over the form.
function picker(view, categories, recent, onPick) {
  const list = h('div', { class: 'cat-list', id: 'cat-list' });
  const search = h('input', { type: 'search', id: 'cat-search', placeholder: t('field.category_search'),
                              'aria-label': t('field.category_search'), autocomplete: 'off' });
  const close = () => sheet.remove();
  const row = (c) => h('button', { type: 'button', class: 'cat', 'data-key': c.key,
                                   onclick: () => { close(); onPick(c); } },
    h('b', {}, nameOf(c)), h('span', {}, `${c.key} · ${LANG === 'en' ? c.name_zh : c.name_en}`));
  function fill() {
    clear(list);
    const q = search.value;
    const recentOnes = recent.map((k) => categories.find((c) => c.key === k)).filter((c) => c && matches(c, q));
    if (recentOnes.length) list.append(h('h3', {}, t('field.category_recent')), ...recentOnes.map(row));
    for (const kind of ['event', 'part']) {
      const found = categories.filter((c) => c.kind === kind && matches(c, q));
      if (found.length) list.append(h('h3', {}, t(`field.category_${kind}`)), ...found.map(row));
    }
    if (!list.childElementCount) list.append(h('p', { class: 'muted' }, t('field.category_none')));
  }
  search.addEventListener('input', fill);
  const sheet = h('div', { class: 'sheet', role: 'dialog', 'aria-label': t('field.category') },
    h('div', { class: 'sheet-head' }, search,
      h('button', { type: 'button', class: 'button', id: 'cat-close', onclick: close }, t('field.close'))),
    list);
  view.append(sheet);
  fill();
  search.focus();
}

export async function render(view, { arg }) {
  const categories = await net.categories();
  const recent = (await net.get(RECENT)) || [];
  let area = await net.get('area');
  const user = net.user();
  if (arg && arg.startsWith('edit-')) {
    const item = await net.outboxGet(arg.slice(5));
    if (item && item.kind === 'report') {
      const f = item.fields;
      const shown = (p) => ({ ...p, url: URL.createObjectURL(p.blob) });
      draft = { category: f.category, description: f.description || '',
                photos: item.photos.filter((p) => p.role !== 'after').map(shown),
                solved: f.self_handled === 'true', handling: f.handling || '',
                after: item.photos.filter((p) => p.role === 'after').map(shown),
                pin: { lon: +f.lon, lat: +f.lat },
                fix: f.fix_lon ? { lon: +f.fix_lon, lat: +f.fix_lat, accuracy: +f.fix_accuracy_m, at: f.fix_at } : null,
                part: null, editing: item.id, error: item.error };
    }
  }

  const mapEl = h('div', { id: 'report-map', class: 'map', role: 'img', 'aria-label': t('field.map') });
  const where = h('p', { id: 'report-where', class: 'muted', 'aria-live': 'polite' });
  const nearby = h('div', { id: 'nearby-parts', class: 'chips' });
  const catButton = h('button', { type: 'button', class: 'select big', id: 'category-button' });
  const catError = h('p', { class: 'error', id: 'category-error' });

  // 自处置: solved on the spot — what was done, and photos after the work
  function solvedField() {
    const handling = h('textarea', { id: 'handling', rows: 2, maxlength: 4000,
                                     placeholder: t('field.self_handling_hint') });
    handling.value = draft.handling;
    handling.addEventListener('input', () => { draft.handling = handling.value; });
    const more = h('div', { id: 'self-handled-fields', class: 'solved' },
      h('label', { for: 'handling' }, t('field.self_handling')), handling,
      h('div', { class: 'label' }, t('field.self_after_photos')),
      afterField);
    more.hidden = !draft.solved;
    const box = h('input', { type: 'checkbox', id: 'self-handled' });
    box.checked = draft.solved;
    box.addEventListener('change', () => {
      draft.solved = box.checked;
      more.hidden = !box.checked;
      beforeField.redraw(); // the after photos count only when they are sent
      afterField.redraw();
    });
    return h('div', { class: 'self-handled' },
      h('label', { class: 'check big', for: 'self-handled' }, box, ' ', t('field.self_handled')),
      h('p', { class: 'muted' }, t('field.self_handled_note')), more);
  }
  // one report carries at most photoLimit() photos: before and (self-handled) after together
  const beforeField = photoField(draft.photos, 'photo', {
    others: () => (draft.solved ? draft.after.length : 0), onChange: () => afterField.redraw() });
  const afterField = photoField(draft.after, 'after', {
    others: () => draft.photos.length, onChange: () => beforeField.redraw() });
  const description = h('textarea', { id: 'description', rows: 3, maxlength: 4000,
                                      placeholder: t('field.description_hint') });
  description.value = draft.description;
  description.addEventListener('input', () => { draft.description = description.value; });
  const submitError = h('p', { class: 'error', id: 'report-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary big', id: 'report-submit' },
                   draft.editing ? t('field.resend') : t('field.submit_report'));

  function drawCategory() {
    const c = categories.find((x) => x.key === draft.category);
    clear(catButton).append(c ? h('span', {}, h('b', {}, nameOf(c)), ` ${c.key}`) : t('field.category_choose'));
    catButton.classList.toggle('empty', !c);
  }
  catButton.addEventListener('click', () => picker(view, categories, recent, (c) => {
    draft.category = c.key;
    catError.textContent = '';
    drawCategory();
  }));

  const suggested = categorySuggestions(description, categories, (c) => {
    draft.category = c.key;
    catError.textContent = '';
    drawCategory();
  }, () => draft.category);

  const form = h('form', { id: 'report-form', class: 'form', novalidate: true },
    // what to fix, in the worker's language (as the outbox says it); the server's words below
    draft.error ? h('div', { class: 'notice error', id: 'refused-reason' }, t('field.refused_reason', { reason: refusal(draft.error) }),
      refusalDetail(draft.error, refusal(draft.error))) : null,
    mapEl, where, nearby,
    h('label', { for: 'category-button' }, t('field.category')), catButton, catError, suggested,
    h('label', { for: 'description' }, t('field.description')), description,
    h('div', { class: 'label' }, t('field.photos')),
    beforeField,
    solvedField(),
    submitError, submit);
  view.append(form);
  drawCategory();

  await leaflet();
  const map = makeMap(mapEl);
  let gridLayer = null;
  let partLayer = null;
  function drawArea() {
    if (gridLayer) gridLayer.remove();
    if (partLayer) partLayer.remove();
    gridLayer = area && area.features.length ? gridsLayer(area).addTo(map) : null;
    partLayer = area && area.parts ? partsLayer(area.parts, pickPart).addTo(map) : null;
    clearLabels();
  }
  const me = positionLayer().addTo(map);
  let marker = null;
  let here = null;  // the phone's last position (the dot)
  // the grids' labels keep clear of the position dot and of the pin (both covered "001")
  function clearLabels() {
    if (!gridLayer) return;
    gridLayer.keepClear([here && { latlng: [here.lat, here.lon], box: DOT_BOX },
      draft.pin && { latlng: [draft.pin.lat, draft.pin.lon], box: PIN_BOX }]);
  }

  function describe() {
    clearLabels();
    if (!draft.pin) {
      where.textContent = t('field.waiting_gps');
      return;
    }
    // without the worker's grids (still downloading right after sign-in, or never downloaded)
    // nothing can be said about the pin: the server resolves it when the report arrives
    const known = area && area.features.length;
    const grid = known && gridAt(area, draft.pin.lon, draft.pin.lat);
    const bits = [grid ? t('field.in_grid', { code: grid.properties.code })
      : known ? t('field.not_in_my_grids') : net.areaLoading() ? t('field.area_loading') : t('field.no_area')];
    if (draft.fix) {
      bits.push(t('field.accuracy', { m: Math.round(draft.fix.accuracy || 0) }));
      const moved = distanceM(draft.fix.lon, draft.fix.lat, draft.pin.lon, draft.pin.lat);
      if (moved >= 1) bits.push(t('field.pin_moved', { distance: metres(moved) }));
    }
    if (draft.part) bits.push(t('field.part_linked', { code: draft.part }));
    where.textContent = bits.join(' · ');
    clear(nearby);
    for (const { part, distance } of partsNear(area, draft.pin.lon, draft.pin.lat, 60).slice(0, 4)) {
      const c = categories.find((x) => x.key === part.properties.category);
      nearby.append(h('button', { type: 'button', class: `chip part ${draft.part === part.properties.code ? 'on' : ''}`,
                                  'data-part': part.properties.code, onclick: () => pickPart(part) },
        `${nameOf(c) || part.properties.category} · ${metres(distance)}`));
    }
  }
  function placePin(lat, lon) {
    draft.pin = { lat, lon };
    if (!marker) {
      marker = makePin(lat, lon, (la, lo) => { draft.pin = { lat: la, lon: lo }; draft.part = null; describe(); }).addTo(map);
    } else {
      marker.setLatLng([lat, lon]);
    }
    describe();
  }
  function pickPart(part) {
    const [lon, lat] = part.geometry.coordinates;
    draft.part = part.properties.code;
    draft.category = part.properties.category;
    drawCategory();
    placePin(lat, lon); // the report stands on the part: the server links it
    draft.part = part.properties.code;
    describe();
    toast(t('field.part_picked', { code: part.properties.code }));
  }
  drawArea();
  map.on('click', (event) => { if (!draft.pin) placePin(event.latlng.lat, event.latlng.lng); });
  if (draft.pin) {
    placePin(draft.pin.lat, draft.pin.lon);
    map.setView([draft.pin.lat, draft.pin.lon], 18);
  } else if (area && area.bbox) {
    const [x0, y0, x1, y1] = area.bbox;
    map.fitBounds([[y0, x0], [y1, x1]]);
  } else {
    map.setView([0, 0], 2);
  }
  describe();
  let left = false; // the screen was left: nothing may touch the removed map any more
  const stop = watchPosition((fix) => {
    if (!fix || left) return;
    me.update(fix);
    here = fix;
    if (!draft.fix || !draft.pin) {
      draft.fix = fix;
      if (!draft.pin) {
        placePin(fix.lat, fix.lon);
        map.setView([fix.lat, fix.lon], 18);
      }
      describe();
    } else {
      clearLabels();
    }
  });

  let submitting = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submitError.textContent = '';
    if (!draft.category) {
      catError.textContent = t('field.category_required');
      catButton.focus();
      return;
    }
    if (!draft.pin) {
      submitError.textContent = t('field.location_required');
      return;
    }
    const fields = { category: draft.category, lon: round7(draft.pin.lon), lat: round7(draft.pin.lat),
                     description: draft.description.trim() };
    if (draft.fix) {
      Object.assign(fields, { fix_lon: round7(draft.fix.lon), fix_lat: round7(draft.fix.lat),
                              fix_accuracy_m: Math.round(draft.fix.accuracy * 10) / 10, fix_at: draft.fix.at });
    }
    let photos = draft.photos.map(({ blob, name }) => ({ blob, name }));
    if (draft.solved) {  // 自处置: checked here too, the server checks again
      const missing = !draft.handling.trim() ? 'field.self_handling_required'
        : !draft.photos.length ? 'field.self_before_required'
          : !draft.after.length ? 'field.self_after_required' : null;
      if (missing) {
        submitError.textContent = t(missing);
        return;
      }
      const over = draft.photos.length + draft.after.length - photoLimit();
      if (over > 0) {  // both fields filled before 自处置 was ticked
        submitError.textContent = t('field.photos_too_many', { max: photoLimit(), n: over });
        return;
      }
      Object.assign(fields, { self_handled: 'true', handling: draft.handling.trim() });
      photos = [...photos, ...draft.after.map(({ blob, name }) => ({ blob, name, role: 'after' }))];
    }
    const c = categories.find((x) => x.key === draft.category);
    // A double tap (or a second tap while the phone is slow to store the photos) must not
    // queue the report twice: each queued item has its own key, so two would be two cases.
    if (submitting) return;
    submitting = true;
    submit.disabled = true;
    try {
      if (draft.editing) {
        await outbox.retry(draft.editing, fields, photos);
      } else {
        await outbox.enqueue('report', fields, { photos, user: user.username,
                                                 label: nameOf(c) || draft.category });
      }
    } catch (e) {
      submitting = false;
      submit.disabled = false;
      throw e;
    }
    await net.set(RECENT, [draft.category, ...recent.filter((k) => k !== draft.category)].slice(0, 6));
    [...draft.photos, ...draft.after].forEach((p) => URL.revokeObjectURL(p.url));
    draft = empty();
    toast(navigator.onLine === false ? t('field.saved_offline') : t('field.saved_sending'));
    location.hash = '#/mine';
  });

  // the area arrived (or its download ended) after the screen opened: the grids, the parts
  // and what the pin is in are drawn again
  const onArea = async () => {
    const fresh = await net.get('area');
    if (left) return;
    if (fresh !== area && fresh) {
      area = fresh;
      drawArea();
      if (!draft.pin && area.bbox) {
        const [x0, y0, x1, y1] = area.bbox;
        map.fitBounds([[y0, x0], [y1, x1]]);
      }
    }
    describe();
  };
  window.addEventListener('area-changed', onArea);
  window.addEventListener('area-synced', onArea);

  return () => {
    left = true;
    window.removeEventListener('area-changed', onArea);
    window.removeEventListener('area-synced', onArea);
    stop();
    removeMap(map);
  };
}
