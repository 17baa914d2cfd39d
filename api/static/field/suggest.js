// 智能分类 in the report form (issue 22): while the worker types the description, the class the
// model trained on the case history suggests, as chips under the category button — a tap
// takes it. Asked once the typing pauses (debounced), only online and only with enough words;
// a suggestion never sets the category by itself, and the app works the same without it.
import { LANG, t } from '../i18n.js';
import * as net from './net.js';
import { clear, h } from './ui.js';

const PAUSE_MS = 600;
const MIN_CHARS = 4;
// the runners-up worth a chip: below this they are noise on a small screen
const SHOWN_FROM = 0.1;

// The chips' box for the form; ``onPick(category)`` when one is tapped; ``chosen()`` the
// category already chosen (its chip is marked, not hidden: the worker sees that they agree).
export function categorySuggestions(description, categories, onPick, chosen) {
  const box = h('div', { class: 'chips suggest', id: 'category-suggest', 'aria-live': 'polite', hidden: true });
  let timer = 0, asked = '', seq = 0;
  const nameOf = (c) => (LANG === 'en' ? c.name_en || c.name_zh : c.name_zh || c.name_en);

  function draw(suggestions) {
    clear(box);
    const shown = suggestions.map((s) => [s, categories.find((c) => c.key === s.category)])
      .filter(([s, c], i) => c && (i === 0 || s.probability >= SHOWN_FROM)).slice(0, 3);
    box.hidden = !shown.length;
    if (!shown.length) return;
    box.append(h('span', { class: 'suggest-label' }, `${t('intel.field_suggest')} · ${t('intel.field_suggest_tap')}`));
    for (const [s, c] of shown) {
      box.append(h('button', {
        type: 'button', class: `chip suggestion ${chosen() === c.key ? 'on' : ''}`, 'data-category': c.key,
        onclick: () => { onPick(c); draw(suggestions); },
      }, `${nameOf(c)} ${Math.round(s.probability * 100)}%`));
    }
    box.append(h('span', { class: 'suggest-hint muted' }, t('intel.field_suggest_hint')));
  }

  async function ask() {
    const text = description.value.trim();
    if (text.length < MIN_CHARS || text === asked || navigator.onLine === false || !net.user()) return;
    asked = text;
    const mine = ++seq;
    try {
      const answer = await net.api('/classify', { method: 'POST', body: { text, k: 3 } });
      if (mine === seq) draw(answer.suggestions || []);
    } catch (e) {
      if (mine === seq) draw([]);  // offline or refused: no suggestion, nothing else changes
    }
  }

  description.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(ask, PAUSE_MS);
  });
  if (description.value.trim()) timer = setTimeout(ask, PAUSE_MS);
  return box;
}
