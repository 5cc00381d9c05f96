/**
 * getDevice without any usable driver fails with instructions, rather than returning nothing.
 * Runs in its own process (vitest's forks pool), so the bogus driver path affects no other test.
 */
import { it, expect } from 'vitest';
import { getDevice } from '../src/runtime/device.js';

it('says how to get an adapter when none can be found', async () => {
  process.env.VK_ICD_FILENAMES = '/nonexistent/vk_icd.json';
  await expect(getDevice()).rejects.toThrow(/No WebGPU adapter was found.*apt-get install -y chromium libvulkan1/);
});
