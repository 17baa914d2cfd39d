// "How was this handled before" on the department workbench (部门工作台, issue 22 相似案例推荐):
// under the case a handler opens, the ten most similar earlier cases they may read, with how
// each ended (common/similar_cases.js, the list the dispatcher's panel on /map shows). A case
// number opens that case in the workbench (main.js's [data-case] click); the server's scope
// means every listed case is one the handler may read.
//
// main.js draws the case as one piece of HTML and announces it ('gridcore:case'); this module
// adds its block to each drawing. Answers are kept per case and version: a live redraw of the
// same case does not ask again.
import { loadMessages } from '../i18n.js';
import { $ } from '../common/ui.js';
import { similarHtml, similarOf } from '../common/similar_cases.js';

const answers = new Map();  // `${id}:${version}` → Promise of the answer ({ error } if failed)

function answerFor(c) {
  const key = `${c.id}:${c.version}`;
  if (!answers.has(key)) {
    if (answers.size > 50) answers.clear();
    answers.set(key, similarOf(c.id).catch((error) => ({ error })));
  }
  return answers.get(key);
}

// The page's own messages are loaded by main.js at start; ours once it is ready (two loads at
// once could each keep only their own half).
const ready = new Promise((resolve) => {
  const done = () => loadMessages(['intel']).catch(() => {}).then(resolve);
  if (document.body.dataset.ready === '1') { done(); return; }
  const obs = new MutationObserver(() => {
    if (document.body.dataset.ready === '1') { obs.disconnect(); done(); }
  });
  obs.observe(document.body, { attributes: true, attributeFilter: ['data-ready'] });
});

async function decorate(c, root) {
  const article = root.querySelector('article.case');
  if (!article || !c?.id || article.querySelector('#intel-similar')) return;
  const block = $('intel-similar-tpl').content.firstElementChild.cloneNode(true);
  (article.querySelector('section.steps') || article.querySelector('.two')).after(block);
  await ready;
  const a = await answerFor(c);
  if (!article.isConnected) return;  // redrawn meanwhile: the new drawing gets its own
  if (a.error?.status === 404) { block.remove(); return; }  // sent back: no longer ours to read
  block.querySelector('.intel-body').innerHTML = similarHtml(a);
  article.dataset.intel = 'ready';
}

document.addEventListener('gridcore:case', (ev) => {
  decorate(ev.detail.case, ev.detail.root).catch(() => {});
});
