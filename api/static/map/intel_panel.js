// 智能建议 on the dispatcher's case panel (issue 22): what the models trained on the case history
// suggest for the open case — its class (智能分类), a department beside the rule's proposal
// with the confidence and the reason (智能派遣), and the ten most similar earlier cases with how
// each ended (相似案例推荐). Suggestions only: the rule (权责清单) still preselects the dispatch
// form, and choosing another department still asks for a reason.
//
// case_panel.js draws the panel as one piece of HTML on every refresh; this module watches the
// drawer and puts its two blocks (intel_case.html's templates) into each new drawing, so the
// panel's own code does not need to know about it. Answers are kept per case and state: a
// live refresh of the same case redraws from memory, without asking the server again.
import { LANG, loadMessages, t } from '../i18n.js';
import { api } from '../common/api.js';
import { $, clausesOf, data, esc, listOf, when } from '../common/ui.js';
import { pct, similarHtml, similarOf, tHtml } from '../common/similar_cases.js';
import { panel } from './case_panel.js';

const answers = new Map();  // `${id}:${state}` → Promise of { classify, dispatch, similar }
let ready = null;

function catName(key, names) {
  const c = names || (panel.config?.categories || []).find((x) => x.key === key);
  if (!c) return key || '';
  const zh = c.name_zh, en = c.name_en || c.name;
  return `${LANG === 'zh-CN' ? zh || en : en || zh} (${key})`;
}

function reasonText(c) {
  const e = c.evidence;
  if (!e) return t('intel.dispatch_text_only');
  const counts = { n: e.cases_there, total: e.cases_total };
  const bits = [e.level.startsWith('class[') ? t('intel.dispatch_reason_major', counts)
    : t('intel.dispatch_reason', { where: t(`intel.level_${e.level}`), ...counts })];
  if (e.sent_back) bits.push(t('intel.dispatch_sent_back', { n: e.sent_back }));
  return bits.join(' · ');
}

// A driving word; "[P0120]" is the class's own taxonomy names found in the text.
function driver(w) {
  const m = /^\[(\w+)\]$/.exec(w);
  const c = m && (panel.config?.categories || []).find((x) => x.key === m[1]);
  return data(c ? `«${LANG === 'zh-CN' ? c.name_zh || c.name : c.name || c.name_zh}»` : w, 'word');
}

function modelLine(m) {
  return m ? `<p class="intel-model muted">${esc(t('intel.model', { version: m.version, at: when(m.trained_at) }))}</p>` : '';
}

// -- what the server suggests -----------------------------------------------------------------
async function fetchAnswers(c) {
  const quiet = (p) => p.catch((e) => ({ error: e }));
  const text = (c.description || '').trim();
  const [classify, dispatch, similar] = await Promise.all([
    text ? quiet(api('/classify', { method: 'POST', json: { text, k: 3 } })) : { suggestions: [], empty: true },
    // dispatchers and administrators (dispatch.propose); others see no dispatch block
    quiet(api(`/cases/${c.id}/dispatch-proposal`)),
    quiet(similarOf(c.id)),
  ]);
  return { classify, dispatch, similar };
}

function answersFor(c) {
  const key = `${c.id}:${c.state}:${c.version}`;
  if (!answers.has(key)) {
    if (answers.size > 50) answers.clear();
    answers.set(key, fetchAnswers(c));
  }
  return answers.get(key);
}

// -- the three blocks ---------------------------------------------------------------------------
function classifyHtml(c, a) {
  // a role that may not classify (case.report: managers, analysts, handlers): no block, not
  // the server's refusal in red
  if (a.error?.status === 403) return null;
  if (a.error) return `<p class="error">${esc(t('intel.failed', { error: a.error.message }))}</p>`;
  const predicted = c.category_source === 'predicted'
    ? `<p class="intel-flag" id="intel-predicted">${esc(t('intel.classify_predicted'))}</p>` : '';
  if (a.empty) return `${predicted}<p class="muted">${esc(t('intel.classify_no_text'))}</p>`;
  // words the model does not know: no class at all, and said so (not the prior's top class)
  if (a.no_evidence) {
    const basis = a.evidence?.basis === 'near_prior' ? 'near_prior' : 'unknown_words';
    return `${predicted}<p class="muted" id="intel-class-none" data-basis="${esc(basis)}">${esc(t(`intel.no_evidence_${basis}`))}</p>${modelLine(a.model)}`;
  }
  if (!a.suggestions?.length) return `${predicted}<p class="muted">${esc(t('intel.no_model'))}</p>`;
  const [top, ...others] = a.suggestions;
  const rest = others.filter((s) => s.probability >= 0.05);  // '0%' told nothing
  // below the model's filing threshold: a guess to check, not the system's opinion
  const unsure = a.confident !== true
    ? `<p class="intel-uncertain" id="intel-class-uncertain">${esc(t('intel.classify_uncertain', { pct: pct(a.threshold ?? 1) }))}</p>` : '';
  const names = (s) => ({ name_zh: s.name_zh, name_en: s.name_en });
  const same = top.category === c.category;
  return `${predicted}
    <p id="intel-class-top" data-category="${esc(top.category)}">${tHtml('intel.classify_top',
      { name: `<b>${data(catName(top.category, names(top)))}</b>`, pct: pct(top.probability) })}
      <span class="${same ? 'agree' : 'differ'}" id="intel-class-verdict">${esc(t(same ? 'intel.classify_same' : 'intel.classify_differs'))}</span></p>
    ${unsure}
    ${top.drivers?.length ? `<p class="muted">${tHtml('intel.classify_drivers', { words: top.drivers.map(driver).join(' ') })}</p>` : ''}
    ${rest.length ? `<p class="muted">${tHtml('intel.classify_others', { list: listOf(rest.map((s) => `${data(catName(s.category, names(s)))} ${pct(s.probability)}%`)) })}</p>` : ''}
    ${modelLine(a.model)}`;
}

function dispatchHtml(c, a) {
  if (a.error) return null;  // not a dispatcher (dispatch.propose): no block
  const cands = a.model?.candidates || [];
  if (!cands.length) return `<p class="muted">${esc(t('intel.no_model'))}</p>`;
  const [top, ...rest] = cands;
  const rule = a.rule?.department;
  const verdict = rule ? (rule === top.department ? t('intel.dispatch_agrees') : t('intel.dispatch_differs'))
    : (top.probability >= 0.5 ? t('intel.dispatch_no_rule') : t('intel.dispatch_low', { pct: 50 }));
  const name = (x) => `${x.department_name || x.department} (${x.department})`;
  const canUse = !!document.querySelector('#details .actions button[data-action=dispatch]');
  return `<p id="intel-dispatch-top" data-department="${esc(top.department)}" data-source="${esc(a.decision?.source || '')}">
      ${tHtml('intel.dispatch_model', { name: `<b>${data(name(top))}</b>`, pct: pct(top.probability) })}</p>
    <p class="intel-reason" id="intel-dispatch-reason">${esc(reasonText(top))}</p>
    <p class="${rule && rule !== top.department ? 'differ' : 'agree'}" id="intel-dispatch-verdict">${esc(verdict)}</p>
    ${rest.length ? `<p class="muted">${esc(t('intel.dispatch_others'))}${esc(t('common.sep_label'))}${clausesOf(rest.map((x) => `${data(name(x))} ${pct(x.probability)}% <small>${esc(reasonText(x))}</small>`))}</p>` : ''}
    ${canUse ? `<button type="button" class="secondary" id="intel-dispatch-use" data-department="${esc(top.department)}">${esc(t('intel.dispatch_use'))}</button>` : ''}
    ${modelLine(a.model)}`;
}

// -- into the panel -----------------------------------------------------------------------------
function clone(id) { return $(id).content.firstElementChild.cloneNode(true); }

async function decorate(article) {
  const c = panel.current;
  if (!c || String(c.id) !== article.dataset.caseId || article.querySelector('#intel-advice')) return;
  const advice = clone('intel-advice-tpl');
  const similar = clone('intel-similar-tpl');
  (article.querySelector('#proposal') || article.querySelector('.facts') || article.firstElementChild).after(advice);
  (article.querySelector('section.steps') || advice).after(similar);
  await ready;
  const a = await answersFor(c);
  if (!article.isConnected) return;  // redrawn meanwhile: the new drawing gets its own
  const classify = classifyHtml(c, a.classify);
  const classBox = advice.querySelector('#intel-classify');
  classBox.hidden = classify === null;
  if (classify !== null) classBox.querySelector('.intel-body').innerHTML = classify;
  const dispatch = dispatchHtml(c, a.dispatch);
  const box = advice.querySelector('#intel-dispatch');
  box.hidden = dispatch === null;
  if (dispatch !== null) box.querySelector('.intel-body').innerHTML = dispatch;
  advice.hidden = classify === null && dispatch === null;  // nothing this role may be told
  similar.querySelector('.intel-body').innerHTML = similarHtml(a.similar, catName);
  article.dataset.intel = 'ready';
}

// "Dispatch as proposed": the panel's own dispatch form with the model's department chosen (a
// department other than the rule's still asks for the reason there).
function useProposal(department) {
  const button = document.querySelector('#details .actions button[data-action=dispatch]');
  if (!button) return;
  button.click();
  const select = document.querySelector('#step select[name=department]');
  if (!select) return;
  select.value = department;
  select.dispatchEvent(new Event('change'));
  select.focus();
}

function watch() {
  const details = $('details');
  if (!details || !$('intel-advice-tpl')) return;
  new MutationObserver(() => {
    const article = details.querySelector('article.case');
    if (article) decorate(article).catch(() => {});
  }).observe(details, { childList: true });
  details.addEventListener('click', (ev) => {
    const b = ev.target.closest('#intel-dispatch-use');
    if (b) useProposal(b.dataset.department);
  });
}

// The page's own messages are loaded by its main module at start; ours once it is ready (two
// loads at once could each keep only their own half).
ready = new Promise((resolve) => {
  const done = () => loadMessages(['intel']).catch(() => {}).then(resolve);
  if (document.body.dataset.ready === '1') { done(); return; }
  const obs = new MutationObserver(() => {
    if (document.body.dataset.ready === '1') { obs.disconnect(); done(); }
  });
  obs.observe(document.body, { attributes: true, attributeFilter: ['data-ready'] });
});
watch();
