// Tells React that act() is in use, so state updates in component tests are flushed quietly.
;(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true
