export { registerLogout as register } from './login.ts';
