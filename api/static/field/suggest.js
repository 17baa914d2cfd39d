// 智能分类 in the report form (issue 22): while the worker types the description, the class the
// model trained on the case history suggests, as chips under the category button — a tap
// takes it. Asked once the typing pauses (debounced), only online and only with enough words;
// a suggestion never sets the category by itself, and the app works the same without it.
// Words the model does not know (gibberish) are no evidence: the server says so
// (``no_evidence``) and the box says "no suggestion" instead of a class; a class below the
// model's filing threshold (not ``confident``) is shown as an uncertain suggestion.
import { LANG, t } from '../i18n.js';
import * as net from './net.js';
import { categoryName, clear, h } from './ui.js';

const PAUSE_MS = 600;
const MIN_CHARS = 4;
// a class worth a chip: below this it is noise on a small screen (the top one too)
const SHOWN_FROM = 0.1;

// The chips' box for the form; ``onPick(category)`` when one is tapped; ``chosen()`` the
// category already chosen (its chip is marked, not hidden: the worker sees that they agree).
export function categorySuggestions(description, categories, onPick, chosen) {
  const box = h('div', { class: 'chips suggest', id: 'category-suggest', 'aria-live': 'polite', hidden: true });
  let timer = 0, asked = '', seq = 0;
  // a chip's class stands alone: a label, as the category button writes it ('Street lamp')
  const nameOf = (c) => categoryName(c, LANG) || c.name_zh || c.key;

  function none(basis) {
    box.dataset.state = 'none';
    box.hidden = false;
    box.append(h('span', { class: 'suggest-none muted', id: 'suggest-none' }, t(`intel.no_evidence_${basis}`)));
  }

  function draw(answer) {
    clear(box);
    delete box.dataset.state;
    box.hidden = true;
    if (!answer) return;  // offline, refused, no model: nothing is said
    if (answer.no_evidence) {
      none(answer.evidence?.basis === 'near_prior' ? 'near_prior' : 'unknown_words');
      return;
    }
    const shown = (answer.suggestions || []).map((s) => [s, categories.find((c) => c.key === s.category)])
      .filter(([s, c]) => c && s.probability >= SHOWN_FROM).slice(0, 3);
    if (!shown.length) {
      if (answer.model) none('near_prior');  // classes, but none the words point to
      return;
    }
    const sure = answer.confident === true;  // at or above the model's filing threshold
    box.dataset.state = sure ? 'confident' : 'uncertain';
    box.hidden = false;
    box.append(h('span', { class: 'suggest-label' },
      `${t(sure ? 'intel.field_suggest' : 'intel.field_suggest_uncertain')} · ${t('intel.field_suggest_tap')}`));
    for (const [s, c] of shown) {
      box.append(h('button', {
        type: 'button', class: `chip suggestion ${sure ? '' : 'uncertain'} ${chosen() === c.key ? 'on' : ''}`,
        'data-category': c.key, onclick: () => { onPick(c); draw(answer); },
      }, `${nameOf(c)} ${Math.round(s.probability * 100)}%`));
    }
    box.append(h('span', { class: 'suggest-hint muted' },
      t(sure ? 'intel.field_suggest_hint' : 'intel.field_suggest_uncertain_hint')));
  }

  async function ask() {
    const text = description.value.trim();
    if (text.length < MIN_CHARS && asked) {  // the words were taken away: so is what they said
      asked = '';
      ++seq;
      draw(null);
    }
    if (text.length < MIN_CHARS || text === asked || navigator.onLine === false || !net.user()) return;
    asked = text;
    const mine = ++seq;
    try {
      const answer = await net.api('/classify', { method: 'POST', body: { text, k: 3 } });
      if (mine === seq) draw(answer);
    } catch (e) {
      if (mine === seq) draw(null);  // offline or refused: no suggestion, nothing else changes
    }
  }

  description.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(ask, PAUSE_MS);
  });
  if (description.value.trim()) timer = setTimeout(ask, PAUSE_MS);
  return box;
}
