// Appeals (申诉) on the evaluation board: the action beside each case that carries a penalty
// the caller may appeal (the API's explanation says which cases carry which penalty and whether
// the caller may appeal: `aggregate.penalty`, `appeal.may_file`), the appeals the caller may
// see (GET /evaluation/appeals, pending first) and the managers' decisions (`may_decide`, never
// the filer's: the API refuses the filer anyway). Every refusal shows the API's problem detail,
// worded in the page's language.
import { cityTime, t } from '../i18n.js';
import { ROOT, api } from '../common/api.js';

const TZ = document.querySelector('main')?.dataset.timezone || 'Asia/Shanghai';
const when = (iso) => cityTime(iso, TZ);
let formSeq = 0;

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// what people wrote, names and codes: data, not the page's words
function data(tag, text, className) {
  const node = el(tag, text, className);
  node.translate = false;
  return node;
}

export const penaltyName = (p) => t(`evalboard.penalty.${p}`);
// a name standing alone as a label begins with a capital (the English names are lower case)
const asLabel = (name) => (name ? name[0].toUpperCase() + name.slice(1) : name);

function caseLink(id, publicNo) {
  const a = data('a', publicNo || `#${id}`);
  a.href = `${ROOT}/map#case=${id}`;
  return a;
}

// An appeal's state and, while it waits, its decision deadline in the colour of its clock
export function appealChip(a) {
  const chip = el('span', undefined, `appeal-chip state-${a.state} clock-${a.clock}`);
  chip.append(el('span', t(`evalboard.appeal_state.${a.state}`), 'state'));
  if (a.state === 'filed') {
    chip.append(el('span', `${t('evalboard.decide_by', { at: when(a.decide_by) })} · ${t(`evalboard.clock.${a.clock}`)}`, 'clock'));
  } else {
    chip.append(el('span', t(`evalboard.clock.${a.clock}`), 'clock'));  // decided in time or late
  }
  return chip;
}

// A reason (required) and its buttons: filing an appeal and deciding one both ask for it.
// `onSubmit(reason)` throws the API's Problem, whose message is its localised detail.
function reasonForm({ label, missing, submit, failed, onSubmit, onCancel }) {
  const form = el('form', undefined, 'reason-form');
  form.noValidate = true;  // the page's own message, in its language
  const id = `reason-${++formSeq}`;
  const caption = el('label', label);
  caption.htmlFor = id;
  const area = el('textarea');
  Object.assign(area, { id, name: 'reason', rows: 3, maxLength: 2000, required: true });
  const error = el('p', '', 'error');
  error.id = `${id}-error`;
  error.setAttribute('role', 'alert');
  area.setAttribute('aria-describedby', error.id);
  const ok = el('button', submit, 'primary');
  ok.type = 'submit';
  const cancel = el('button', t('evalboard.cancel'));
  cancel.type = 'button';
  cancel.addEventListener('click', onCancel);
  const buttons = el('div', undefined, 'buttons');
  buttons.append(ok, cancel);
  form.append(caption, area, error, buttons);
  area.addEventListener('input', () => {  // a stale refusal goes once the reason is edited
    error.textContent = '';
    area.removeAttribute('aria-invalid');
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const reason = area.value.trim();
    if (!reason) {
      error.textContent = missing;
      area.setAttribute('aria-invalid', 'true');
      area.focus();
      return;
    }
    area.removeAttribute('aria-invalid');
    error.textContent = '';
    ok.disabled = true;
    try {
      await onSubmit(reason);
    } catch (problem) {
      error.textContent = failed(problem.message);
      ok.disabled = false;
    }
  });
  return form;
}

// The latest appeal about one case and penalty (the party's appeals come newest first)
const latest = (appeals, caseId, penalty) => (appeals || []).find(
  (a) => a.case_id === caseId && a.penalty === penalty);

// One aggregate's cases when it lists penalised cases: a row per case with its appeal's
// state, or the appeal action for who may file while the window is open.
// ctx: { kind, code, period, filed(caseId) }
export function appealableCases(d, aggregate, ctx) {
  const { name: penalty, case_ids: carrying } = aggregate.penalty;
  const list = el('ul', undefined, 'appealable');
  const mayFile = d.appeal && d.appeal.may_file && d.appeal.open;
  for (const c of aggregate.cases || []) {
    const li = el('li');
    li.dataset.case = c.id;
    li.dataset.penalty = penalty;
    li.append(caseLink(c.id, c.public_no));
    if (carrying.includes(c.id)) {
      const found = latest(d.appeals, c.id, penalty);
      if (found) li.append(appealChip(found));
      if (mayFile && (!found || found.state === 'rejected')) {
        const button = el('button', t('evalboard.appeal'), 'appeal-button');
        button.type = 'button';
        button.setAttribute('aria-label', t('evalboard.appeal_title', { case: c.public_no || `#${c.id}`, penalty: penaltyName(penalty) }));
        button.addEventListener('click', () => {
          button.hidden = true;
          const form = reasonForm({
            label: t('evalboard.appeal_title', { case: c.public_no || `#${c.id}`, penalty: penaltyName(penalty) }),
            missing: t('evalboard.appeal_reason_missing'),
            submit: t('evalboard.appeal_submit'),
            failed: (reason) => t('evalboard.appeal_failed', { reason }),
            onSubmit: async (reason) => {
              await api('/evaluation/appeals', { method: 'POST', json: {
                kind: ctx.kind, party: ctx.code, case_id: c.id, penalty, period: ctx.period, reason } });
              await ctx.filed(c.id, penalty);
            },
            onCancel: () => { form.remove(); button.hidden = false; button.focus(); },
          });
          li.append(form);
          form.querySelector('textarea').focus();
        });
        li.append(button);
      }
    }
    list.append(li);
  }
  return list;
}

// The window for appeals about this party's period, said once above its cases
export function windowNote(d) {
  if (!d.appeal || !d.appeal.may_file) return null;
  if (d.appeal.open) return el('p', t('evalboard.appeal_window_open', { closes: d.appeal.closes }), 'note appeal-window');
  if (Date.now() > Date.parse(d.appeal.closes_at)) {
    return el('p', t('evalboard.appeal_window_closed', { closes: d.appeal.closes }), 'note appeal-window');
  }
  return null;
}

// The party's own appeals, each with its case, penalty and state
export function partyAppeals(d) {
  if (!d.appeals || !d.appeals.length) return null;
  const list = el('ul', undefined, 'party-appeals');
  for (const a of d.appeals) {
    const li = el('li');
    li.append(caseLink(a.case_id, a.public_no), ` ${penaltyName(a.penalty)} `, appealChip(a));
    list.append(li);
  }
  return list;
}

// pending first, the nearest deadline first; then the decided ones, the latest first
function order(a, b) {
  const pa = a.state === 'filed' ? 0 : 1;
  const pb = b.state === 'filed' ? 0 : 1;
  if (pa !== pb) return pa - pb;
  if (pa === 0) return Date.parse(a.decide_by) - Date.parse(b.decide_by);
  return Date.parse(b.decided_at || b.filed_at) - Date.parse(a.decided_at || a.filed_at);
}

function field(list, term, value) {
  list.append(el('dt', term));
  const dd = el('dd');
  dd.append(...[value].flat());
  list.append(dd);
}

function appealCard(a, ctx) {
  const card = el('li', undefined, `appeal-card state-${a.state}`);
  card.dataset.id = a.id;
  const head = el('div', undefined, 'head');
  head.append(appealChip(a));
  card.append(head);
  const list = el('dl');
  const party = data('span', a.party_name);
  if (a.party_name !== a.party_code) party.append(' ', data('span', a.party_code, 'code'));
  field(list, t('evalboard.appeal_party'), party);
  field(list, t('evalboard.appeal_case'), caseLink(a.case_id, a.public_no));
  field(list, t('evalboard.appeal_penalty'), asLabel(penaltyName(a.penalty)));
  field(list, t('evalboard.appeal_period'), data('span', a.period));
  field(list, t('evalboard.appeal_reason_label'), data('span', a.reason, 'reason'));
  field(list, t('evalboard.appeal_filed'), data('span', t('evalboard.filed_by_at', { by: a.filed_by, at: when(a.filed_at) })));
  if (a.state !== 'filed') {
    field(list, t('evalboard.appeal_decision'), data('span', t('evalboard.decided_line', {
      by: a.decided_by, at: when(a.decided_at), reason: a.decision_reason })));
  }
  card.append(list);
  if (a.may_decide) {
    const actions = el('div', undefined, 'actions');
    for (const decision of ['approve', 'reject']) {
      const button = el('button', t(`evalboard.${decision}`), `decide ${decision}`);
      button.type = 'button';
      button.dataset.decision = decision;
      button.addEventListener('click', () => {
        actions.hidden = true;
        const form = reasonForm({
          label: t(`evalboard.${decision}_reason`),
          missing: t('evalboard.decision_reason_missing'),
          submit: t(`evalboard.confirm_${decision}`),
          failed: (reason) => t('evalboard.decide_failed', { reason }),
          onSubmit: async (reason) => {
            await api(`/evaluation/appeals/${a.id}/${decision}`, { method: 'POST', json: { reason } });
            await ctx.decided(a.id);
          },
          onCancel: () => { form.remove(); actions.hidden = false; button.focus(); },
        });
        form.dataset.decision = decision;
        card.append(form);
        form.querySelector('textarea').focus();
      });
      actions.append(button);
    }
    card.append(actions);
  } else if (a.state === 'filed' && a.filed_by_caller) {
    card.append(el('p', t('evalboard.own_appeal'), 'note own'));
  }
  return card;
}

// The appeals the caller may see, under the ranking; hidden for who may see none
export async function loadAppeals(ctx) {
  const section = document.getElementById('appeals');
  const link = document.getElementById('appeals-link');
  let body;
  try {
    body = await api('/evaluation/appeals');
  } catch (problem) {
    section.hidden = link.hidden = true;
    if (problem.status !== 401 && problem.status !== 403) throw problem;
    return;
  }
  const rows = [...body.appeals].sort(order);
  const pending = rows.filter((a) => a.state === 'filed').length;
  link.textContent = pending ? t('evalboard.appeals_link', { n: pending }) : t('evalboard.appeals_link_none');
  link.hidden = false;
  section.hidden = false;
  document.getElementById('appeals-note').textContent = rows.length
    ? t('evalboard.appeals_count', { n: rows.length }) : t('evalboard.appeals_none');
  document.getElementById('appeals-list').replaceChildren(...rows.map((a) => appealCard(a, ctx)));
  section.dataset.ready = '1';
}
