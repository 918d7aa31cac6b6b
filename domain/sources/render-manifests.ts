import { isMap, parseDocument } from 'yaml';
import { SourceError } from './errors.ts';
import type { DocumentSplitter } from './render.ts';
import { splitYamlDocuments } from './yaml-split.ts';

/**
 * The YAML-aware document splitter (uses the `yaml` package, so it is kept out of workflow imports): splits like
 * splitYamlDocuments, then parses each document, reports a syntax error naming the document, drops documents
 * with no content (only comments) and refuses a document that is not a mapping (a Kubernetes object is one).
 */
export const splitManifestDocuments: DocumentSplitter = (text, field) => {
  const docs: string[] = [];
  splitYamlDocuments(text).forEach((raw, i) => {
    const at = `${field} document ${i + 1}`;
    const doc = parseDocument(raw, { prettyErrors: false, uniqueKeys: true });
    const problem = doc.errors[0];
    if (problem) {
      throw new SourceError('render_failed', `${at}: invalid YAML: ${problem.message.split('\n')[0]}`, {
        field: at,
      });
    }
    if (doc.contents === null) return;
    if (!isMap(doc.contents)) {
      throw new SourceError('render_failed', `${at}: must be a mapping (a Kubernetes object)`, { field: at });
    }
    docs.push(raw);
  });
  return docs;
};
