// Finds keys that occur twice in one JSON object (JSON.parse keeps the last one silently).

/** The keys written more than once in any object of `json` (which must be valid JSON). */
export function duplicateKeys(json: string): string[] {
  JSON.parse(json);
  const dups: string[] = [];
  const stack: Set<string>[] = [];
  const contexts: ('object' | 'array')[] = [];
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '{') { stack.push(new Set()); contexts.push('object'); }
    else if (c === '[') contexts.push('array');
    else if (c === '}') { stack.pop(); contexts.pop(); }
    else if (c === ']') contexts.pop();
    else if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      const text = json.slice(i, j + 1);
      let k = j + 1;
      while (/\s/.test(json[k] ?? '')) k++;
      // A string followed by ':' inside an object is a key.
      if (json[k] === ':' && contexts.at(-1) === 'object') {
        const key = JSON.parse(text) as string;
        const seen = stack.at(-1)!;
        if (seen.has(key)) dups.push(key);
        seen.add(key);
      }
      i = j;
    }
  }
  return dups;
}
