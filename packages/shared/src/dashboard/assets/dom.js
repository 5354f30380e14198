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
 * Replaces a container's children only when `key` (the data they show, serialised) changed:
 * rebuilding an unchanged table every 2 s would make a screen reader lose its place.
 */
export function replaceIfChanged(container, key, build) {
  if (container.dataset.key === key) return false;
  container.dataset.key = key;
  container.replaceChildren(...build());
  return true;
}
