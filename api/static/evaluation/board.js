// The evaluation board (考评中心): the ranking of one kind of party for one period, read from
// /evaluation/{kind} with the caller's token, and one party's terms and cases from
// /evaluation/{kind}/{code}, and the appeals (申诉) of appeals.js: filed beside a penalised
// case, listed and decided under the ranking. The server rendered the selectors in the caller's
// language.
import { loadMessages, t } from '../i18n.js';
import { ROOT, api, signIn, who } from '../common/api.js';
import { appealableCases, loadAppeals, partyAppeals, windowNote } from './appeals.js';

const config = JSON.parse(document.getElementById('board-config').textContent);
const $ = (id) => document.getElementById(id);
const NONE = '—';  // no value: a dash in every language
const state = { indicators: [], ranking: null, opener: null, party: null };

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function status(text, isError = false) {
  const box = $('status');
  box.hidden = !text;
  box.textContent = text || '';
  box.classList.toggle('error', isError);
}

function query() {
  const q = new URLSearchParams({ period: config.period });
  if (config.level) q.set('level', config.level);
  return q.toString();
}

// a rate as a percentage, a count as a whole number, anything else with its unit
function figure(value, unit) {
  if (value === null || value === undefined) return NONE;
  if (unit === 'ratio') return `${(value * 100).toFixed(1)} %`;
  if (unit === '件') return String(Math.round(value));
  const digits = unit === 'km2' ? 2 : 1;
  return Number(value).toLocaleString(document.documentElement.lang, { maximumFractionDigits: digits });
}

// the model's English names are lower case (they are used in sentences too): a label starts
// with a capital, as everywhere else in the English UI
const label = (name) => (name ? name[0].toUpperCase() + name.slice(1) : name);

function scoreText(party) {
  return party.score === null ? NONE : party.score.toFixed(1);
}

function columns(parties) {
  // the weighted indicators, then the counts behind them; an indicator nobody has is left out
  const used = state.indicators.filter((i) => parties.some((p) => p.values[i.key] !== null));
  return [...used.filter((i) => i.weight > 0), ...used.filter((i) => !(i.weight > 0))];
}

function drawRanking(body) {
  state.ranking = body;
  const cols = columns(body.parties);
  const head = el('tr');
  head.append(el('th', t('evalboard.rank')), el('th', t('evalboard.party')),
    el('th', t('evalboard.score')), el('th', t('evalboard.driver')));
  for (const c of cols) {
    head.append(el('th', label(c.name)));
  }
  $('ranking').tHead.replaceChildren(head);
  const rows = body.parties.map((p) => {
    const tr = el('tr');
    tr.tabIndex = 0;
    tr.dataset.code = p.code;
    tr.setAttribute('aria-haspopup', 'dialog');  // its own cells say whose row it is
    const name = el('td', undefined, 'party');
    name.append(el('span', p.name, 'name'));
    if (p.name !== p.code) name.append(el('span', p.code, 'code'));
    name.translate = false;  // a name and a code, as the city wrote them
    const score = el('td', scoreText(p), 'score');
    if (p.score !== null && p.score_before_appeals !== null && p.score_before_appeals !== p.score) {
      score.append(el('small', t('evalboard.before_appeals', { score: p.score_before_appeals.toFixed(1) })));
    }
    const driver = el('td', p.driver ? t('evalboard.driver_text', { name: label(p.driver.name),
      points: p.driver.points_lost.toFixed(1) }) : NONE, 'driver');
    tr.append(el('td', p.rank ?? NONE, 'rank'), name, score, driver);
    for (const c of cols) tr.append(el('td', figure(p.values[c.key], c.unit), 'num'));
    tr.addEventListener('click', () => openDetail(p, tr));
    tr.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter' && event.key !== ' ') return;
      event.preventDefault();
      openDetail(p, tr);
    });
    return tr;
  });
  $('ranking').tBodies[0].replaceChildren(...rows);
  $('ranking-wrap').hidden = rows.length === 0;
  $('ranking-note').textContent = (rows.length
    ? `${t('evalboard.parties', { n: rows.length })} · ${body.source_note}` : t('evalboard.no_parties'));
  // cases imported from a legacy system: said above the ranking, where it is read first
  $('imported-note').textContent = body.imported ? body.imported.note : '';
  $('imported-note').hidden = !body.imported;
  status('');
}

function caseLinks(aggregate) {
  const box = el('span', undefined, 'cases');
  box.translate = false;
  for (const c of aggregate.cases || []) {
    const a = el('a', c.public_no || `#${c.id}`);  // the number every other page writes
    a.href = `${ROOT}/map#case=${c.id}`;
    box.append(a, ' ');
  }
  const more = (aggregate.count ?? 0) - (aggregate.cases_listed ?? 0);
  if (aggregate.cases && more > 0) box.append(el('span', t('evalboard.cases_more', { n: more }), 'more'));
  return box;
}

function drawDetail(d) {
  $('detail-heading').textContent = d.name;
  const body = $('detail-body');
  body.replaceChildren();
  const line = el('p', t('evalboard.score_line', { score: d.score === null ? NONE : d.score.toFixed(1) }), 'score-line');
  if (d.score_before_appeals !== null && d.score_before_appeals !== d.score) {
    line.append(' · ', t('evalboard.before_appeals', { score: d.score_before_appeals.toFixed(1) }));
  }
  if (d.appeals && d.appeals.length) line.append(' · ', t('evalboard.appeals', { n: d.appeals.length }));
  body.append(line);
  if (d.imported) body.append(el('p', d.imported.note, 'notice imported'));  // before the terms
  const terms = el('table', undefined, 'terms');
  const head = el('tr');
  head.append(el('th', t('evalboard.indicator')), el('th', t('evalboard.value')),
    el('th', t('evalboard.weight')), el('th', t('evalboard.points_lost')));
  terms.append(head);
  for (const term of d.terms) {
    const tr = el('tr');
    const name = el('td', label(term.name));
    tr.append(name, el('td', figure(term.value, term.unit), 'num'),
      el('td', term.weight ? term.weight.toFixed(2) : NONE, 'num'),
      el('td', term.weight ? term.points_lost.toFixed(1) : NONE, 'num'));
    terms.append(tr);
  }
  body.append(terms);
  body.append(el('h3', t('evalboard.cases')));
  const note = windowNote(d);
  if (note) body.append(note);
  const ctx = { kind: d.kind, code: d.code, period: config.period, filed: appealFiled };
  const list = el('dl', undefined, 'aggregates');
  for (const [key, aggregate] of Object.entries(d.aggregates)) {
    // areas (the patrol coverage's *_m2) in km², everything else a count of cases
    const amount = key.endsWith('_m2') ? t('evalboard.km2', { n: figure((aggregate.count ?? 0) / 1e6, 'km2') })
      : figure(aggregate.count, '件');
    list.append(el('dt', `${t(`evalboard.agg.${d.kind}.${key}`)} · ${amount}`));
    const dd = el('dd');
    if (aggregate.penalty && aggregate.cases && aggregate.cases.length) {
      dd.append(appealableCases(d, aggregate, ctx));  // each case with its appeal
    } else {
      dd.append(aggregate.cases && aggregate.cases.length ? caseLinks(aggregate) : el('span', t('evalboard.no_cases')));
    }
    list.append(dd);
  }
  body.append(list);
  const own = partyAppeals(d);
  if (own) body.append(el('h3', t('evalboard.party_appeals')), own);
  body.append(el('p', d.source_note, 'note'));
}

async function showDetail(party) {
  drawDetail(await api(`/evaluation/${config.kind}/${encodeURIComponent(party.code)}?${query()}`));
}

// after an appeal is filed: the party's cases again (the case now shows its appeal) and the list
async function appealFiled(caseId, penalty) {
  await showDetail(state.party);
  const row = document.querySelector(`#detail li[data-case="${caseId}"][data-penalty="${penalty}"]`);
  const chip = row && row.querySelector('.appeal-chip');
  if (chip) {
    chip.tabIndex = -1;
    chip.focus();
  }
  await loadAppeals(appealContext);
}

// after a decision: the ranking's scores, the list and the open party change with it
async function appealDecided(appealId) {
  drawRanking(await api(`/evaluation/${config.kind}?${query()}`));
  await loadAppeals(appealContext);
  if (state.party && !$('detail').hidden) await showDetail(state.party);
  const card = document.querySelector(`#appeals-list li[data-id="${appealId}"]`);
  if (card) {
    card.tabIndex = -1;
    card.focus();
  }
}

const appealContext = { decided: appealDecided };

async function openDetail(party, from) {
  state.opener = from;
  state.party = party;
  const panel = $('detail');
  $('detail-heading').textContent = party.name;
  $('detail-body').replaceChildren(el('p', t('evalboard.loading')));
  panel.hidden = false;
  panel.dataset.ready = '0';
  try {
    await showDetail(party);
  } catch (error) {
    $('detail-body').replaceChildren(el('p', t('evalboard.failed', { reason: error.message }), 'error'));
  }
  panel.dataset.ready = '1';
  $('detail-close').focus();
}

function closeDetail() {
  $('detail').hidden = true;
  if (state.opener) state.opener.focus();
}

async function briefing() {
  const button = $('briefing');
  button.disabled = true;
  try {
    const r = await fetch(`${ROOT}/briefings/${encodeURIComponent(config.period)}.pdf`, {
      headers: { Accept: 'application/pdf', 'Accept-Language': document.documentElement.lang, ...who.headers() } });
    if (!r.ok) {
      const body = await r.json().catch(() => null);
      throw new Error((body && (body.detail || body.title)) || String(r.status));
    }
    const url = URL.createObjectURL(await r.blob());
    const a = el('a');
    a.href = url;
    a.download = `briefing-${config.period}.pdf`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (error) {
    status(t('evalboard.briefing_failed', { reason: error.message }), true);
  } finally {
    button.disabled = false;
  }
}

function askSignIn() {
  status('');
  const form = $('signin');
  form.hidden = false;
  $('username').focus();
  form.onsubmit = async (event) => {
    event.preventDefault();
    $('signin-error').textContent = '';
    try {
      await signIn($('username').value, $('password').value);
    } catch (error) {
      $('signin-error').textContent = error.message;
      return;
    }
    form.hidden = true;
    await load();
  };
}

async function load() {
  status(t('evalboard.loading'));
  try {
    const indicators = await api('/evaluation');
    state.indicators = indicators.kinds[config.kind].indicators;
    drawRanking(await api(`/evaluation/${config.kind}?${query()}`));
    $('briefing').hidden = false;
    await loadAppeals(appealContext);
  } catch (error) {
    if (error.status === 401) {
      who.setToken(null);
      askSignIn();
    } else {
      status(t('evalboard.failed', { reason: error.message }), true);
    }
  }
  document.body.dataset.ready = '1';
}

async function start() {
  await loadMessages(['common', 'evalboard']);
  const form = $('selector');
  form.addEventListener('change', () => form.requestSubmit());
  for (const button of form.querySelectorAll('.without-script')) button.hidden = true;
  $('detail-close').addEventListener('click', closeDetail);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && !$('detail').hidden) closeDetail();
  });
  $('briefing').addEventListener('click', briefing);
  await load();
}

start().catch((error) => status(t('evalboard.failed', { reason: error.message }), true));
