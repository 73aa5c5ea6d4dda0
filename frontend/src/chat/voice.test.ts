import { describe, expect, it } from 'vitest'
import { recognitionLang, recognizerClass, transcript, voiceProblem, withTranscript, type RecognitionEvent } from './voice'

const heard = (...parts: [string, boolean][]): RecognitionEvent => ({
  results: parts.map(([text, isFinal]) => Object.assign([{ transcript: text }], { isFinal })),
})

describe('voice input', () => {
  it('is offered only where the browser has a recognizer, prefixed or not', () => {
    class R {}
    expect(recognizerClass({})).toBeNull()
    expect(recognizerClass({ webkitSpeechRecognition: R })).toBe(R)
    expect(recognizerClass({ SpeechRecognition: R, webkitSpeechRecognition: class {} })).toBe(R)
  })

  it('writes final results and the revised guess after the text already in the box', () => {
    expect(transcript(heard(['What is', true], [' the capital', false]))).toBe('What is the capital')
    expect(withTranscript('', 'hello')).toBe('hello')
    expect(withTranscript('Translate:', 'good morning')).toBe('Translate: good morning')
    expect(withTranscript('Translate:\n', 'good morning')).toBe('Translate:\ngood morning')
    expect(withTranscript('Keep me', '')).toBe('Keep me')
  })

  it('listens in the page’s language, with the browser’s own region where it has one', () => {
    expect(recognitionLang('en', ['en-GB', 'fr-FR'])).toBe('en-GB')
    expect(recognitionLang('en', ['zh-CN'])).toBe('en-US')
    expect(recognitionLang('zh', ['zh-TW', 'en-US'])).toBe('zh-TW')
    expect(recognitionLang('zh', ['en-US'])).toBe('zh-CN')
  })

  it('says what went wrong, and nothing when the user stopped it', () => {
    expect(voiceProblem('aborted')).toBeNull()
    expect(voiceProblem('not-allowed')).toBe('voiceDenied')
    expect(voiceProblem('no-speech')).toBe('voiceNoSpeech')
    expect(voiceProblem('audio-capture')).toBe('voiceNoMicrophone')
    expect(voiceProblem('network')).toBe('voiceUnavailable')
  })
})
