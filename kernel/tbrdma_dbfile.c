// SPDX-License-Identifier: GPL-2.0
/*
 * A verbs queue pair's doorbell file: an anonymous file whose one ioctl,
 * TBRDMA_IOC_QP_DOORBELL, rings its client queue pair's doorbell. The
 * uverbs method does the same through the core's attribute parsing and
 * object lookups, which cost the process several times the system call
 * itself (docs/verbs.md). The file holds a reference to the context alone:
 * its code is here, in tbrdma.ko, so that the client's module (tbrdma_ib)
 * may go while processes keep it open, and the context answers EIO once
 * its queue pair is destroyed.
 */
#include <linux/anon_inodes.h>
#include <linux/fs.h>

#include "tbrdma.h"
#include "tbrdma_client.h"

static long tbrdma_dbfile_ioctl(struct file *file, unsigned int cmd,
				unsigned long arg)
{
	struct tbrdma_kctx *kc = file->private_data;
	long ret;

	if (cmd != TBRDMA_IOC_QP_DOORBELL)
		return -ENOTTY;
	/*
	 * No uverbs object lock keeps the queue pair here, as it does the
	 * method's: this does, until the doorbell's tail is done too.
	 */
	if (down_read_killable(&kc->doorbell_sem))
		return -EINTR;
	ret = kc->qp_gone ? -EIO : tbrdma_client_qp_doorbell(kc);
	up_read(&kc->doorbell_sem);
	return ret;
}

static int tbrdma_dbfile_release(struct inode *inode, struct file *file)
{
	tbrdma_kctx_put(file->private_data);
	return 0;
}

static const struct file_operations tbrdma_dbfile_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = tbrdma_dbfile_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.release = tbrdma_dbfile_release,
	.llseek = noop_llseek,
};

struct file *tbrdma_client_qp_doorbell_file(struct tbrdma_kctx *kc)
{
	struct file *file;

	refcount_inc(&kc->ref);
	file = anon_inode_getfile("[tbrdma_doorbell]", &tbrdma_dbfile_fops, kc,
				  O_RDWR | O_CLOEXEC);
	if (IS_ERR(file))
		tbrdma_kctx_put(kc);
	return file;
}
EXPORT_SYMBOL_GPL(tbrdma_client_qp_doorbell_file);
