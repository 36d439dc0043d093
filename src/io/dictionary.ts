/**
 * The English dictionary the DMET lens's spelling score checks words against (lenses/dmet/text.ts
 * spellingScore), read from the `word-list` package.
 */
import { readFileSync } from 'node:fs';
import wordsPath from 'word-list';

/**
 * The English word list of the `word-list` package (274k lower-case words of two or more
 * letters), plus the 26 single letters: pyspellchecker's English dictionary, which the paper
 * used, knows "a", "i" and the letters split off contractions ("don't" → don, t).
 */
export function loadDictionary(): Set<string> {
  const words = new Set(readFileSync(wordsPath, 'utf8').split('\n').filter(Boolean));
  for (let c = 97; c <= 122; c++) words.add(String.fromCharCode(c));
  return words;
}
