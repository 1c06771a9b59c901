/** The dashboard's entry: the shell (app.tsx) speaks only the public GraphQL API, like pipectl. */
import { render } from 'preact';
import { App } from './app';
import './style.css';

render(<App />, document.getElementById('app')!);
