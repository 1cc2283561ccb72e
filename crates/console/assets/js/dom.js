// Building DOM nodes safely. Text always goes in as text nodes or
// textContent, never as markup: data from the broker cannot become HTML.
// Attribute names come from code only; a name starting with "on" (an
// inline handler) is refused.

/** The element with `id`; a missing one is a bug in index.html. */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`index.html has no element #${id}`);
  return node;
}

/**
 * A new element. `props`: `text` (textContent), `class`, `testid`
 * (data-testid), `dataset` (data-*), `on` ({event: listener}); any other
 * name is an attribute (true: present, false/null/undefined: absent).
 * Children: nodes, strings (as text) or arrays of them.
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  applyProps(node, props);
  appendChildren(node, children);
  return node;
}

export function applyProps(node, props) {
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else if (name === "class") node.setAttribute("class", value);
    else if (name === "testid") node.dataset.testid = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "on") listen(node, value);
    else setAttribute(node, name, value);
  }
}

function listen(node, handlers) {
  for (const [event, handler] of Object.entries(handlers)) node.addEventListener(event, handler);
}

function setAttribute(node, name, value) {
  if (/^on/i.test(name)) throw new Error(`refusing inline handler attribute ${name}`);
  node.setAttribute(name, value === true ? "" : String(value));
}

export function appendChildren(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendChildren(node, child);
    else if (child instanceof Node) node.append(child);
    else node.append(document.createTextNode(String(child)));
  }
}

/** Sets a status line's text and its kind ("", "ok" or "error"). */
export function setStatus(node, text, kind = "") {
  node.textContent = text;
  node.classList.toggle("ok", kind === "ok");
  node.classList.toggle("error", kind === "error");
}

/** Replaces a datalist's or select's options with `values` (keeps the choice). */
export function setOptions(list, values, { placeholder } = {}) {
  const chosen = list.value;
  const options = values.map((value) => el("option", { value, text: value }));
  if (placeholder !== undefined && values.length === 0) {
    options.unshift(el("option", { value: "", text: placeholder, disabled: true }));
  }
  list.replaceChildren(...options);
  if (values.includes(chosen)) list.value = chosen;
}
