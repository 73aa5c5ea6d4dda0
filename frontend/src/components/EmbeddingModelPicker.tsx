import { useStore } from 'zustand'
import { modelLabel, modelSize, resolveEmbeddingModel } from '../chat/model'
import { useT } from '../i18n'
import { loadEmbeddingModel, modelsStore } from '../store/models'
import { settingsStore } from '../store/settings'
import { ModelDetails, ModelLoadStatus } from './ModelInfo'

/**
 * The model that embeds attached documents, picked like the chat model (every one the server
 * lists, with its size and state). A choice applies at once and loads the model, with the
 * server's progress, so the first question about a document does not wait for it.
 */
export function EmbeddingModelPicker() {
  const t = useT()
  const listed = useStore(modelsStore, (s) => s.embeddingModels)
  const chosen = useStore(settingsStore, (s) => s.embeddingModel)
  const { model, gone } = resolveEmbeddingModel(chosen, listed)

  const choose = (id: string) => {
    settingsStore.getState().update({ embeddingModel: id })
    void loadEmbeddingModel(id)
  }

  const size = model?.size_bytes ? modelSize(model.size_bytes) : '?'
  return (
    <fieldset>
      <legend>{t('documents')}</legend>
      <label className="field">
        <span>{t('embeddingModel')}</span>
        <select value={model?.id ?? ''} disabled={listed.length === 0} onChange={(e) => choose(e.target.value)}>
          {listed.length === 0 && <option value="">{t('noEmbeddingModels')}</option>}
          {listed.map((m) => (
            <option key={m.id} value={m.id}>
              {modelLabel(m, t)}
            </option>
          ))}
        </select>
        <small>{t('embeddingModelHint')}</small>
      </label>
      {gone && (
        <p className="error-text" role="status">
          {model ? t('embeddingModelGone', { model: gone, fallback: model.id }) : t('embeddingModelGoneNone', { model: gone })}
        </p>
      )}
      <ModelLoadStatus model={model} unloaded={t('embeddingLoadsOnUse', { model: model?.id ?? '', size })} />
      {model && <ModelDetails model={model} />}
    </fieldset>
  )
}
