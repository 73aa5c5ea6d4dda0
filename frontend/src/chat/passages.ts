import { ApiError, createEmbeddings, embeddingModels, listModels, type ApiConfig } from '../api/client'
import { chunkText } from '../documents/chunk'
import { topMatches } from '../documents/retrieve'
import { resolveEmbeddingModel } from './model'
import { estimateTokens } from '../documents/tokens'
import { chatStore } from '../store/conversations'
import { followLoad, waitsForLoad } from '../store/models'
import { apiConfig, settingsStore } from '../store/settings'
import type { Attachment, Passage } from '../types'

/** A file up to this size (estimated tokens) goes into the prompt whole. */
export const WHOLE_FILE_TOKENS = 1500
/** How many passages of the large files go into the prompt. */
export const TOP_PASSAGES = 5
const EMBED_BATCH = 32
// The estimate runs low on code and symbols; this margin keeps passages inside the model's limit.
const EMBED_INPUT_SHARE = 0.6
const DEFAULT_EMBED_INPUT = 256

type Piece = Omit<Passage, 'n'>

async function embedAll(cfg: ApiConfig, model: string, texts: string[], signal: AbortSignal): Promise<number[][]> {
  const vectors: number[][] = []
  for (let i = 0; i < texts.length; i += EMBED_BATCH) {
    vectors.push(...(await createEmbeddings(cfg, model, texts.slice(i, i + EMBED_BATCH), signal)))
  }
  return vectors
}

/**
 * The passages a question about `attachments` is sent with: small files whole, and of the large
 * ones the passages closest to the question, ranked by the embeddings model chosen in Settings
 * (else the server's first).
 */
export async function choosePassages(attachments: Attachment[], question: string, signal: AbortSignal): Promise<Passage[]> {
  const whole: Piece[] = []
  const large: Attachment[] = []
  for (const a of attachments) {
    if (estimateTokens(a.text) <= WHOLE_FILE_TOKENS) whole.push({ file: a.name, index: 0, total: 1, text: a.text })
    else large.push(a)
  }
  const found: Piece[] = []
  if (large.length > 0) {
    const cfg = apiConfig()
    const listed = embeddingModels(await listModels(cfg, signal))
    const { model } = resolveEmbeddingModel(settingsStore.getState().embeddingModel, listed)
    if (!model) {
      throw new ApiError({
        kind: 'bad_request',
        message: `${large.map((a) => a.name).join(', ')} is too long to send whole, and this server lists no embeddings model to search it with. Attach a shorter file (up to about ${WHOLE_FILE_TOKENS * 4} characters), or serve an embeddings model.`,
      })
    }
    // Not in memory: the first request loads it, while Settings' picker shows the server's progress.
    if (waitsForLoad(model)) void followLoad(model.id, signal)
    const limit = Math.floor((model.max_model_len ?? DEFAULT_EMBED_INPUT) * EMBED_INPUT_SHARE)
    const pieces = large.flatMap((a) => {
      const chunks = chunkText(a.text, limit)
      return chunks.map((text, index) => ({ file: a.name, index, total: chunks.length, text }))
    })
    // A long question is searched by its opening: the embedding model reads only so much.
    const query = chunkText(question, limit)[0] ?? question
    const [queryVector, ...vectors] = await embedAll(cfg, model.id, [query, ...pieces.map((p) => p.text)], signal)
    for (const i of topMatches(queryVector ?? [], vectors, TOP_PASSAGES)) {
      const piece = pieces[i]
      if (piece) found.push(piece)
    }
  }
  return [...whole, ...found].map((p, i) => ({ n: i + 1, ...p }))
}

/**
 * Chooses the passages for the question being answered (`userId`) when it has files and none are
 * chosen yet (a regenerate reuses them), calling `onSearch` first. Returns what that message carries.
 */
export async function preparePassages(
  convId: string,
  userId: string | undefined,
  signal: AbortSignal,
  onSearch: () => void,
): Promise<Passage[]> {
  const user = chatStore.getState().conversations[convId]?.messages.find((m) => m.id === userId)
  // Images go to the model as they are (see requestMessages); documents go as passages.
  const documents = user?.attachments?.filter((a) => a.kind !== 'image') ?? []
  if (!user || documents.length === 0) return []
  if (user.passages) return user.passages
  onSearch()
  const passages = await choosePassages(documents, user.content, signal)
  chatStore.getState().updateMessage(convId, user.id, { passages })
  return passages
}
