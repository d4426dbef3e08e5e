import { main } from './main';
import { recoverRawArgv } from './rawArgv';

void main(recoverRawArgv(process.argv));
