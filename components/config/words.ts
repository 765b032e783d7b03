// Splitting a command the way the host tool does: components/host-tool/lib/common.sh
// `rh_split_words` runs `xargs printf '%s\0'`, so quotes and backslashes follow xargs' rules (POSIX
// xargs: single quotes, double quotes, backslash; no expansion; a quote must close on its line).
// Splitting at config time lets an unbalanced quote be refused before anything is registered,
// instead of silently dropping the rest of the command on the host.

/** The words of `s`, or a message saying why it cannot be split. */
export function splitWords(s: string): string[] | string {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else cur += c;
      continue;
    }
    if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === "\\") {
      if (i + 1 >= s.length) return "ends with a lone backslash";
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) return `has an unbalanced ${quote === "'" ? "single" : "double"} quote; the host would drop the rest of the command`;
  if (inWord) words.push(cur);
  return words;
}
