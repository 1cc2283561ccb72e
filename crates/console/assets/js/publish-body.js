// The record object of POST /api/topics/{topic}/records from the publish
// form's fields (docs/http-api.md: {"value", "key", "headers",
// "partition"}; only value is required). Pure: no DOM.

/**
 * fields: {key, format ("json" | "text"), value (text), headers ([name,
 * value] rows), priority ("" | "high" | "low"), partition (text)}.
 * Returns {record} or {error: {field, message}}.
 */
export function buildRecord(fields) {
  const value = parseValue(fields.format, fields.value ?? "");
  if (value.error) return { error: { field: "value", message: value.error } };
  const record = { value: value.value };
  if (fields.key) record.key = fields.key;
  const headers = buildHeaders(fields.headers ?? [], fields.priority ?? "");
  if (headers.error) return { error: { field: "headers", message: headers.error } };
  if (Object.keys(headers.headers).length > 0) record.headers = headers.headers;
  const partition = String(fields.partition ?? "").trim();
  if (partition !== "") {
    if (!/^\d+$/.test(partition)) {
      return { error: { field: "partition", message: "The partition is a whole number from 0." } };
    }
    record.partition = Number(partition);
  }
  return { record };
}

function parseValue(format, text) {
  if (format === "text") return { value: text };
  if (text.trim() === "") return { error: "Write a JSON value, or choose Text." };
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    return { error: `The value is not JSON: ${error.message}` };
  }
}

/** Header rows into an object; the priority choice sets header "priority". */
function buildHeaders(rows, priority) {
  const headers = {};
  for (const [rawName, value] of rows) {
    const name = rawName.trim();
    if (name === "" && value === "") continue;
    if (name === "") return { error: `A header with the value "${value}" has no name.` };
    headers[name] = value;
  }
  if (priority) headers.priority = priority;
  return { headers };
}

/** The answer's first record as a sentence. */
export function describeWritten(topic, answer) {
  const written = answer?.records?.[0];
  if (!written) return `Written to ${topic}.`;
  const offset = written.offset === null || written.offset === undefined ? "not reported" : written.offset;
  return `Written to ${topic}: partition ${written.partition}, offset ${offset}.`;
}
