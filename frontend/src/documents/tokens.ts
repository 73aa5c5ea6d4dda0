// CJK characters are about one token each (in both the chat and the embedding tokenizers);
// other text averages about four characters a token.
const CJK = /[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]/g

/** A tokenizer-free estimate of how many tokens `text` makes: for progress text and chunk sizes. */
export function estimateTokens(text: string): number {
  const cjk = text.match(CJK)?.length ?? 0
  return Math.ceil(cjk + (text.length - cjk) / 4)
}
