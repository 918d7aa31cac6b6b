/**
 * Splits a multi-document YAML stream at its document markers, textually and without a YAML parser (plain TS,
 * safe in workflow code). A line `---` (optionally followed by a space and more) starts a new document, a line
 * `...` ends one; in YAML such lines cannot occur inside a document's content at column 0. Documents that are
 * empty or only whitespace are dropped.  Each document keeps its own text (comments, formatting), with
 * leading blank lines and trailing whitespace removed and one final newline.
 */
export function splitYamlDocuments(text: string): string[] {
  const docs: string[] = [];
  let current: string[] = [];
  const flush = () => {
    const doc = current
      .join('\n')
      .replace(/^(?:[ \t]*\n)+/, '')
      .replace(/\s+$/, '');
    if (doc !== '') docs.push(`${doc}\n`);
    current = [];
  };
  for (const line of text.split(/\r?\n/)) {
    const marker = /^---(?:[ \t]+(.*))?$/.exec(line);
    if (marker) {
      flush();
      // `--- |` or `--- !tag`: the marker line carries content of the new document.
      const rest = marker[1]?.trim() ?? '';
      if (rest !== '' && !rest.startsWith('#')) current.push(line);
      continue;
    }
    if (/^\.\.\.[ \t]*(?:#.*)?$/.test(line)) {
      flush();
      continue;
    }
    current.push(line);
  }
  flush();
  return docs;
}
