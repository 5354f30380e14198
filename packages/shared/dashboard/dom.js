// The page builds its DOM with these helpers only: text goes in through textContent, never
// innerHTML, so a node's error message or a model name from an upstream cannot inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** el('td', { class: 'num' }, 'text', childNode, …): attributes set as given; null/false ones skipped. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttributes(node, attrs);
  append(node, children);
  return node;
}

function setAttributes(node, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * Updates a container's children to what `build` makes, touching only what changed: not at
 * all when `key` (the data shown, serialised) is the same as last time, else row by row and,
 * inside a table row that kept its attributes, cell by cell. Rebuilding a whole table every
 * 2 s would make a screen reader lose its place.
 */
export function replaceIfChanged(container, key, build) {
  if (container.dataset.key === key) return false;
  container.dataset.key = key;
  const next = build();
  const old = [...container.children];
  if (old.length !== next.length) {
    container.replaceChildren(...next);
    return true;
  }
  next.forEach((node, i) => {
    const before = old[i];
    if (before.outerHTML === node.outerHTML) return;
    if (before.tagName === 'TR' && sameAttributes(before, node) && before.cells.length === node.cells.length) {
      [...node.cells].forEach((cell, j) => {
        if (before.cells[j].outerHTML !== cell.outerHTML) before.replaceChild(cell, before.cells[j]);
      });
    } else container.replaceChild(node, before);
  });
  return true;
}

function sameAttributes(a, b) {
  if (a.attributes.length !== b.attributes.length) return false;
  for (const { name, value } of a.attributes) if (b.getAttribute(name) !== value) return false;
  return true;
}
